"use client";

import { useState } from "react";
import { TokenUsageByVm } from "./TokenUsageByVm";
import { VmLimitsForm } from "./VmLimitsForm";

export interface TokenVmSpendingProps {
  customerId: string;
  /** Load the usage again when this changes (e.g. the dashboard's data). */
  refreshKey?: unknown;
}

/** "Which VM spent my tokens, and how much may each spend a day": usage by VM beside the
 * per-VM daily limits; saving limits reloads the usage (a VM at its limit is marked). */
export function TokenVmSpending({ customerId, refreshKey }: TokenVmSpendingProps) {
  const [saves, setSaves] = useState(0);
  return (
    <div className="tb-vm-spending">
      <TokenUsageByVm customerId={customerId} refreshKey={[refreshKey, saves]} />
      <VmLimitsForm customerId={customerId} onSaved={() => setSaves((count) => count + 1)} />
    </div>
  );
}
