"use client";

import { useEffect, useRef } from "react";
import type { UsageByVm, VmUsage } from "../api/client";
import { useApi } from "../api/useApi";
import { barWidth, formatTokens } from "../format";
import { ErrorMessage, Loading } from "./parts/Status";

export interface TokenUsageByVmProps {
  customerId: string;
  /** The window: the last `days` UTC days, today included (1-90, default 30). */
  days?: number;
  /** VMs shown one by one (1-50, default 10); the rest are summed as "Other VMs". */
  top?: number;
  /** Load again when this changes (e.g. the dashboard's data, or saved limits). */
  refreshKey?: unknown;
}

const OTHER_COLOR = "hsl(0 0% 65%)";
const CHART_HEIGHT_PX = 120;

/** A stable, distinct colour per rank (golden-angle hues): the legend and the bars agree. */
function vmColor(rank: number): string {
  return `hsl(${(rank * 137) % 360} 55% 48%)`;
}

function vmName(vmId: string | null): string {
  return vmId ?? "No VM named";
}

/** Which VM spent the tokens, from `GET /api/v1/customers/{id}/tokens/usage?group_by=vm`:
 * the top VMs of the window with their daily limits (a VM at its limit today is marked),
 * and tokens per VM per day as stacked bars. */
export function TokenUsageByVm({
  customerId,
  days = 30,
  top = 10,
  refreshKey,
}: TokenUsageByVmProps) {
  const usage = useApi(
    (client, signal) => client.getUsageByVm(customerId, { days, top }, signal),
    [customerId, days, top],
  );
  const { state, reload } = usage;
  const firstKey = useRef(true);
  useEffect(() => {
    if (firstKey.current) {
      firstKey.current = false;
      return;
    }
    reload();
  }, [refreshKey, reload]);
  return (
    <section className="tb-card tb-vm-usage" aria-labelledby="tb-vm-usage-title">
      <h2 id="tb-vm-usage-title">Usage by VM</h2>
      {state.status === "loading" && <Loading label="Loading usage by VM…" />}
      {state.status === "error" && (
        <ErrorMessage error={state.error} context="Could not load usage by VM" onRetry={reload} />
      )}
      {state.status === "ready" && <UsageByVmBody data={state.data} />}
    </section>
  );
}

function UsageByVmBody({ data }: { data: UsageByVm }) {
  if (data.vm_count === 0) {
    return (
      <p className="tb-muted">
        No usage from {data.period_start} to {data.period_end}.
      </p>
    );
  }
  const colors = new Map(data.top_vms.map((vm, rank) => [vm.vm_id, vmColor(rank)]));
  return (
    <>
      <p className="tb-muted" data-testid="vm-usage-summary">
        {formatTokens(data.total)} tokens from {data.period_start} to {data.period_end}, across{" "}
        {data.vm_count} {data.vm_count === 1 ? "VM" : "VMs"}
      </p>
      <TopVms vms={data.top_vms} colors={colors} />
      <DailyBars data={data} colors={colors} />
    </>
  );
}

function TopVms({ vms, colors }: { vms: VmUsage[]; colors: Map<string | null, string> }) {
  const largest = vms[0]?.used_mt ?? 0;
  return (
    <ul className="tb-bars" aria-label="Top VMs by tokens used">
      {vms.map((vm) => (
        <li
          key={vm.vm_id ?? "-"}
          className="tb-bars__row"
          data-testid="vm-usage-row"
          data-vm-id={vm.vm_id ?? ""}
          data-at-limit={vm.at_limit ? "true" : "false"}
        >
          <span className="tb-bars__label">
            <span
              aria-hidden="true"
              style={{
                display: "inline-block",
                width: "0.7em",
                height: "0.7em",
                marginRight: "0.4em",
                background: colors.get(vm.vm_id),
              }}
            />
            {vmName(vm.vm_id)}
          </span>
          <span className="tb-bars__track" aria-hidden="true">
            <span
              className="tb-bars__bar"
              style={{ width: barWidth(vm.used_mt, largest), background: colors.get(vm.vm_id) }}
            />
          </span>
          <span className="tb-bars__value">
            {formatTokens(vm.used)} tokens
            {vm.daily_limit !== null && (
              <span className="tb-muted">
                {" "}
                · today {formatTokens(vm.used_today)} of {formatTokens(vm.daily_limit)}
              </span>
            )}
            {vm.at_limit && (
              <span className="tb-badge tb-badge--warning" style={{ marginLeft: "0.4em" }}>
                At its daily limit
              </span>
            )}
          </span>
        </li>
      ))}
    </ul>
  );
}

function DailyBars({ data, colors }: { data: UsageByVm; colors: Map<string | null, string> }) {
  const largest = Math.max(0, ...data.days.map((day) => day.total_mt));
  return (
    <div
      role="img"
      aria-label="Tokens per VM per day, stacked"
      data-testid="vm-usage-days"
      style={{
        display: "flex",
        alignItems: "flex-end",
        gap: "2px",
        height: `${CHART_HEIGHT_PX}px`,
        marginTop: "0.75rem",
      }}
    >
      {data.days.map((day) => (
        <div
          key={day.day}
          title={`${day.day}: ${formatTokens(day.total)} tokens`}
          data-day={day.day}
          style={{
            flex: "1 1 0",
            display: "flex",
            flexDirection: "column-reverse",
            overflow: "hidden",
            height: barWidth(day.total_mt, largest),
          }}
        >
          {day.top_vms.map((vm) => (
            <span
              key={vm.vm_id ?? "-"}
              title={`${vmName(vm.vm_id)}, ${day.day}: ${formatTokens(vm.used)} tokens`}
              style={{
                height: barWidth(vm.used_mt, day.total_mt),
                background: colors.get(vm.vm_id),
              }}
            />
          ))}
          {day.other_mt > 0 && (
            <span
              title={`Other VMs, ${day.day}: ${formatTokens(day.other)} tokens`}
              style={{ height: barWidth(day.other_mt, day.total_mt), background: OTHER_COLOR }}
            />
          )}
        </div>
      ))}
    </div>
  );
}
