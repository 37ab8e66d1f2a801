"use client";

import { useState, type FormEvent } from "react";
import { isApiError, type VmLimits } from "../api/client";
import { useTokenBillingClient } from "../api/context";
import { useApi } from "../api/useApi";
import { formatDateTime } from "../format";
import { ErrorMessage, Loading } from "./parts/Status";

export interface VmLimitsFormProps {
  customerId: string;
  /** Called with the limits as saved (e.g. to reload a usage chart). */
  onSaved?: (limits: VmLimits) => void;
}

// The API's own rules (openapi.json): exact decimal tokens, VM ids as agents send them.
const TOKENS = /^\d{1,9}(\.\d{1,3})?$/;
const VM_ID = /^[A-Za-z0-9][A-Za-z0-9_.:/+=-]{0,127}$/;

interface Row {
  key: number;
  vmId: string;
  limit: string; // "" = no limit for this VM
}

/** Per-VM daily limits, from `GET/PUT /api/v1/customers/{id}/tokens/vm-limits`: a default
 * for every VM and per-VM overrides (blank: no limit). A debit, hold or settle that would
 * take a VM past its limit in a UTC day is refused; an admin may only lower limits. */
export function VmLimitsForm({ customerId, onSaved }: VmLimitsFormProps) {
  const limits = useApi((client, signal) => client.getVmLimits(customerId, signal), [customerId]);
  const { state, reload } = limits;
  return (
    <section className="tb-card tb-vm-limits" aria-labelledby="tb-vm-limits-title">
      <h2 id="tb-vm-limits-title">Daily limits per VM</h2>
      {state.status === "loading" && <Loading label="Loading VM limits…" />}
      {state.status === "error" && (
        <ErrorMessage error={state.error} context="Could not load VM limits" onRetry={reload} />
      )}
      {state.status === "ready" && (
        <LimitsBody
          key={customerId}
          data={state.data}
          customerId={customerId}
          onSaved={(saved) => {
            reload();
            onSaved?.(saved);
          }}
        />
      )}
    </section>
  );
}

type SaveState =
  { step: "idle" } | { step: "saving" } | { step: "saved" } | { step: "error"; error: unknown };

function rowsOf(data: VmLimits): Row[] {
  return Object.entries(data.limits).map(([vmId, limit], key) => ({
    key,
    vmId,
    limit: limit ?? "",
  }));
}

function LimitsBody({
  data,
  customerId,
  onSaved,
}: {
  data: VmLimits;
  customerId: string;
  onSaved: (limits: VmLimits) => void;
}) {
  const client = useTokenBillingClient();
  const [fallback, setFallback] = useState(data.default_daily_limit ?? "");
  const [rows, setRows] = useState<Row[]>(() => rowsOf(data));
  const [nextKey, setNextKey] = useState(rows.length);
  const [save, setSave] = useState<SaveState>({ step: "idle" });

  const problems: string[] = [];
  if (fallback !== "" && !TOKENS.test(fallback)) {
    problems.push("The default limit must be a number of tokens (up to 3 decimals).");
  }
  const named = rows.map((row) => row.vmId);
  rows.forEach((row) => {
    if (!VM_ID.test(row.vmId)) problems.push(`"${row.vmId}" is not a VM id.`);
    else if (named.indexOf(row.vmId) !== named.lastIndexOf(row.vmId)) {
      problems.push(`${row.vmId} is listed twice.`);
    }
    if (row.limit !== "" && !TOKENS.test(row.limit)) {
      problems.push(`The limit of ${row.vmId || "a VM"} must be a number of tokens.`);
    }
  });
  if (rows.length > data.max_named_vms) problems.push(`At most ${data.max_named_vms} VMs.`);
  const unique = [...new Set(problems)];

  function update(key: number, change: Partial<Row>): void {
    setRows((current) => current.map((row) => (row.key === key ? { ...row, ...change } : row)));
    setSave({ step: "idle" });
  }

  async function submit(event: FormEvent): Promise<void> {
    event.preventDefault();
    if (unique.length > 0) return;
    setSave({ step: "saving" });
    try {
      const saved = await client.updateVmLimits(customerId, {
        default_daily_limit: fallback === "" ? null : fallback,
        limits: Object.fromEntries(rows.map((row) => [row.vmId, row.limit || null])),
      });
      setSave({ step: "saved" });
      onSaved(saved);
    } catch (error) {
      setSave({ step: "error", error });
    }
  }

  return (
    <form className="tb-vm-limits__form" onSubmit={(event) => void submit(event)}>
      <p className="tb-muted">
        Tokens a VM may spend in a UTC day; a debit past it is refused, whatever the balance.
        Changes bind every VM within {data.takes_effect_within_s} seconds.
      </p>
      <label>
        Every VM, unless listed below{" "}
        <input
          inputMode="decimal"
          value={fallback}
          placeholder="no limit"
          onChange={(event) => {
            setFallback(event.target.value.trim());
            setSave({ step: "idle" });
          }}
          aria-label="Default daily limit in tokens"
        />{" "}
        tokens a day
      </label>
      {rows.length > 0 && (
        <ul className="tb-vm-limits__rows" aria-label="Limits per VM">
          {rows.map((row) => (
            <li key={row.key} data-testid="vm-limit-row">
              <input
                value={row.vmId}
                onChange={(event) => update(row.key, { vmId: event.target.value.trim() })}
                aria-label="VM id"
                placeholder="vm-7"
              />{" "}
              <input
                inputMode="decimal"
                value={row.limit}
                onChange={(event) => update(row.key, { limit: event.target.value.trim() })}
                aria-label={`Daily limit of ${row.vmId || "this VM"} in tokens`}
                placeholder="no limit"
              />{" "}
              tokens a day{" "}
              <button
                type="button"
                className="tb-button tb-button--secondary"
                onClick={() => {
                  setRows((current) => current.filter((other) => other.key !== row.key));
                  setSave({ step: "idle" });
                }}
                aria-label={`Remove the limit of ${row.vmId || "this VM"}`}
              >
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
      <button
        type="button"
        className="tb-button tb-button--secondary"
        onClick={() => {
          setRows((current) => [...current, { key: nextKey, vmId: "", limit: "" }]);
          setNextKey(nextKey + 1);
        }}
      >
        Add a VM
      </button>
      {unique.length > 0 && save.step !== "saving" && (
        <ul className="tb-muted" aria-live="polite">
          {unique.map((problem) => (
            <li key={problem}>{problem}</li>
          ))}
        </ul>
      )}
      <button
        type="submit"
        className="tb-button tb-button--primary"
        disabled={unique.length > 0 || save.step === "saving"}
      >
        {save.step === "saving" ? "Saving…" : "Save limits"}
      </button>
      {save.step === "saved" && (
        <p role="status" data-testid="vm-limits-saved">
          Saved.
        </p>
      )}
      {save.step === "error" && <SaveError error={save.error} />}
      {data.updated_at && (
        <p className="tb-muted">Last changed {formatDateTime(data.updated_at)}</p>
      )}
    </form>
  );
}

function SaveError({ error }: { error: unknown }) {
  // The API says why a change was refused (an admin raising a limit: 403): show its words.
  if (isApiError(error) && (error.code === "forbidden" || error.code === "invalid_request")) {
    return (
      <div className="tb-error" role="alert">
        <p className="tb-error__title">Could not save the limits</p>
        <p className="tb-error__detail">{error.message}</p>
      </div>
    );
  }
  return <ErrorMessage error={error} context="Could not save the limits" />;
}
