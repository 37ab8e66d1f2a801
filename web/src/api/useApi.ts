"use client";

import { useCallback, useEffect, useRef, useState } from "react";
import type { TokenBillingClient } from "./client";
import { useTokenBillingClient } from "./context";

export type Loadable<T> =
  | { status: "loading"; data?: undefined; error?: undefined }
  | { status: "ready"; data: T; error?: undefined }
  | { status: "error"; data?: undefined; error: unknown };

export interface ApiState<T> {
  state: Loadable<T>;
  /** Loads again; the current data stays on screen until the new data arrives. */
  reload: () => void;
  /** True while a reload runs over data already shown. */
  refreshing: boolean;
}

/** Runs `load` with the context's client when a key in `deps` changes (and on reload),
 * aborting the previous run; a reply that arrives after unmount is dropped. */
export function useApi<T>(
  load: (client: TokenBillingClient, signal: AbortSignal) => Promise<T>,
  deps: readonly unknown[],
): ApiState<T> {
  const client = useTokenBillingClient();
  const [state, setState] = useState<Loadable<T>>({ status: "loading" });
  const [refreshing, setRefreshing] = useState(false);
  const [generation, setGeneration] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const lastGeneration = useRef(generation);

  useEffect(() => {
    const controller = new AbortController();
    if (lastGeneration.current === generation) {
      setState({ status: "loading" }); // other keys (another customer): never show old data
    }
    lastGeneration.current = generation;
    setRefreshing(true);
    loadRef
      .current(client, controller.signal)
      .then((data) => {
        if (!controller.signal.aborted) setState({ status: "ready", data });
      })
      .catch((error: unknown) => {
        if (!controller.signal.aborted) setState({ status: "error", error });
      })
      .finally(() => {
        if (!controller.signal.aborted) setRefreshing(false);
      });
    return () => controller.abort();
    // The effect runs again when a key in `deps` changes (or on reload), not when `load` does.
  }, [client, generation, ...deps]);

  const reload = useCallback(() => setGeneration((value) => value + 1), []);
  return { state, reload, refreshing };
}
