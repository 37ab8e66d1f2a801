// Rendered only inside the "use client" components, so no directive of its own.
import { POLL_MS, type LiveStatus } from "../../api/useLiveBalance";

const LABELS: Record<LiveStatus, string> = {
  live: "Live",
  connecting: "Connecting…",
  polling: `Updated every ${POLL_MS / 1000} s`,
};

/** Whether the figures beside it follow the account as it changes. */
export function LiveBadge({ status }: { status: LiveStatus }) {
  return (
    <span
      className={`tb-live tb-live--${status}`}
      data-testid="live-status"
      data-status={status}
      title={status === "live" ? "Balance changes show as they happen" : undefined}
    >
      <span className="tb-live__dot" aria-hidden="true" />
      {LABELS[status]}
    </span>
  );
}
