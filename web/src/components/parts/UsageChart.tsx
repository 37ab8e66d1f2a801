// Rendered only inside the "use client" components, so no directive of its own.
import type { UsageByAction } from "../../api/client";
import { actionLabel, barWidth, formatDate, formatTokens } from "../../format";

export interface UsageChartProps {
  usage: UsageByAction[];
  periodStart: string;
  periodEnd: string;
}

/** Tokens used per action over the dashboard's period, as CSS bars (widths from the
 * integer `tokens_mt`; the amounts shown are the API's decimal strings). */
export function UsageChart({ usage, periodStart, periodEnd }: UsageChartProps) {
  const rows = [...usage].sort((a, b) => b.tokens_mt - a.tokens_mt);
  const largest = rows[0]?.tokens_mt ?? 0;
  return (
    <section className="tb-card tb-usage" aria-labelledby="tb-usage-title">
      <h2 id="tb-usage-title">Usage in the last 30 days</h2>
      <p className="tb-muted">
        {formatDate(periodStart)} – {formatDate(periodEnd)}
      </p>
      {rows.length === 0 ? (
        <p className="tb-muted">No usage in this period.</p>
      ) : (
        <ul className="tb-bars" aria-label="Tokens used per action">
          {rows.map((row) => (
            <li key={row.action} className="tb-bars__row">
              <span className="tb-bars__label">{actionLabel(row.action)}</span>
              <span className="tb-bars__track" aria-hidden="true">
                <span
                  className="tb-bars__bar"
                  style={{ width: barWidth(row.tokens_mt, largest) }}
                />
              </span>
              <span className="tb-bars__value">{formatTokens(row.tokens)} tokens</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
