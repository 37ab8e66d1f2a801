"use client";

import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import type { TokenRate, UsageEstimate, UsageEstimateRequest } from "../api/client";
import { useTokenBillingClient } from "../api/context";
import { useApi } from "../api/useApi";
import { actionLabel, formatPrice, formatTokens } from "../format";
import { ErrorMessage, Loading } from "./parts/Status";

type Period = UsageEstimateRequest["period"];

export interface PricingCalculatorProps {
  /** Called with each new estimate; TokenPricing highlights its recommended package. */
  onEstimate?: (estimate: UsageEstimate) => void;
  /** Starting quantities per action (default, a month: 50 hours of VM runtime, 1,000
   * screenshots, 2,000 AI messages). */
  initialUsage?: Record<string, string>;
  initialPeriod?: Period;
  /** Estimate once with the starting quantities as soon as the rates load (default true). */
  estimateOnLoad?: boolean;
}

const DEFAULT_USAGE: Record<string, string> = {
  vm_runtime: "3000",
  screenshot: "1000",
  ai_message: "2000",
};
// Whole or decimal quantities; the API reads at most 6 decimal places.
const QUANTITY = /^\d{1,10}(\.\d{1,6})?$/;

type Run = { step: "idle" } | { step: "running" } | { step: "error"; error: unknown };

/** The usage calculator: quantities per action from `GET /api/v1/token-rates`, estimated by
 * `POST /api/v1/usage-estimate`. */
export function PricingCalculator({
  onEstimate,
  initialUsage = DEFAULT_USAGE,
  initialPeriod = "month",
  estimateOnLoad = true,
}: PricingCalculatorProps) {
  const rates = useApi((client, signal) => client.listRates(signal), []);
  return (
    <section className="tb-root tb-card tb-calculator" aria-labelledby="tb-calculator-title">
      <h2 id="tb-calculator-title">How many tokens do you need?</h2>
      {rates.state.status === "loading" && <Loading label="Loading usage rates…" />}
      {rates.state.status === "error" && (
        <ErrorMessage
          error={rates.state.error}
          context="Could not load usage rates"
          onRetry={rates.reload}
        />
      )}
      {rates.state.status === "ready" && (
        <CalculatorForm
          rates={rates.state.data.data}
          onEstimate={onEstimate}
          initialUsage={initialUsage}
          initialPeriod={initialPeriod}
          estimateOnLoad={estimateOnLoad}
        />
      )}
    </section>
  );
}

interface CalculatorFormProps {
  rates: TokenRate[];
  onEstimate: ((estimate: UsageEstimate) => void) | undefined;
  initialUsage: Record<string, string>;
  initialPeriod: Period;
  estimateOnLoad: boolean;
}

function CalculatorForm({
  rates,
  onEstimate,
  initialUsage,
  initialPeriod,
  estimateOnLoad,
}: CalculatorFormProps) {
  const client = useTokenBillingClient();
  const formId = useId();
  const [period, setPeriod] = useState<Period>(initialPeriod);
  const [quantities, setQuantities] = useState<Record<string, string>>(() =>
    Object.fromEntries(rates.map((rate) => [rate.action, initialUsage[rate.action] ?? ""])),
  );
  const [run, setRun] = useState<Run>({ step: "idle" });
  const [estimate, setEstimate] = useState<UsageEstimate | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const started = useRef(false);

  const invalid = rates.filter((rate) => {
    const value = (quantities[rate.action] ?? "").trim();
    return value !== "" && !QUANTITY.test(value);
  });

  async function submit(): Promise<void> {
    const usage = rates
      .map((rate) => ({ action: rate.action, quantity: (quantities[rate.action] ?? "").trim() }))
      .filter((line) => line.quantity !== "" && /[1-9]/.test(line.quantity));
    if (invalid.length > 0) {
      setProblem(
        `Enter a number for ${invalid.map((rate) => actionLabel(rate.action)).join(", ")}.`,
      );
      return;
    }
    if (usage.length === 0) {
      setProblem("Enter how much you expect to use of at least one action.");
      return;
    }
    setProblem(null);
    setRun({ step: "running" });
    try {
      const result = await client.estimateUsage({ usage, period });
      setEstimate(result);
      setRun({ step: "idle" });
      onEstimate?.(result);
    } catch (error) {
      setRun({ step: "error", error });
    }
  }

  useEffect(() => {
    if (estimateOnLoad && !started.current) {
      started.current = true;
      void submit();
    }
    // Only on mount: later estimates come from the form.
  }, []);

  function onSubmit(event: FormEvent<HTMLFormElement>): void {
    event.preventDefault();
    void submit();
  }

  return (
    <form
      className="tb-calculator__form"
      onSubmit={onSubmit}
      noValidate
      aria-describedby={problem ? `${formId}-problem` : undefined}
    >
      <label className="tb-field tb-field--period">
        <span>Quantities are per</span>
        <select
          value={period}
          onChange={(event) => setPeriod(event.target.value === "day" ? "day" : "month")}
        >
          <option value="month">month</option>
          <option value="day">day</option>
        </select>
      </label>
      <div className="tb-calculator__fields">
        {rates.map((rate) => (
          <QuantityField
            key={rate.action}
            rate={rate}
            period={period}
            value={quantities[rate.action] ?? ""}
            invalid={invalid.includes(rate)}
            onChange={(value) => setQuantities((current) => ({ ...current, [rate.action]: value }))}
          />
        ))}
      </div>
      {problem && (
        <p id={`${formId}-problem`} className="tb-field__problem" role="alert">
          {problem}
        </p>
      )}
      <button
        type="submit"
        className="tb-button tb-button--primary"
        disabled={run.step === "running"}
      >
        {run.step === "running" ? "Estimating…" : "Estimate"}
      </button>
      {run.step === "error" && <ErrorMessage error={run.error} context="Could not estimate" />}
      {estimate && <EstimateResult estimate={estimate} />}
    </form>
  );
}

interface QuantityFieldProps {
  rate: TokenRate;
  period: Period;
  value: string;
  invalid: boolean;
  onChange: (value: string) => void;
}

function QuantityField({ rate, period, value, invalid, onChange }: QuantityFieldProps) {
  const id = useId();
  const unit = rate.unit === "MB" ? "MB" : `${rate.unit}s`;
  return (
    <div className="tb-field">
      <label htmlFor={id}>
        {actionLabel(rate.action)}
        <span className="tb-field__hint">
          {unit} per {period} · {formatTokens(rate.tokens_per_unit)} token
          {rate.tokens_per_unit === "1" ? "" : "s"} each
        </span>
      </label>
      <input
        id={id}
        type="text"
        inputMode="decimal"
        autoComplete="off"
        placeholder="0"
        value={value}
        aria-invalid={invalid}
        onChange={(event) => onChange(event.target.value)}
      />
    </div>
  );
}

function EstimateResult({ estimate }: { estimate: UsageEstimate }) {
  const pack = estimate.recommended_package;
  return (
    <div className="tb-estimate" role="status" aria-live="polite">
      <p className="tb-estimate__total">
        About <strong>{formatTokens(estimate.tokens_per_month)}</strong> tokens a month.
      </p>
      <p
        className="tb-estimate__recommendation"
        data-testid="recommended-package"
        data-package={pack.id}
      >
        Recommended:{" "}
        <strong>
          {estimate.packs_needed > 1 ? `${estimate.packs_needed} × ` : ""}
          {pack.name}
        </strong>{" "}
        ({formatPrice(pack.price_cents, pack.currency)} for {formatTokens(pack.total_tokens)} tokens
        {estimate.packs_needed > 1 ? " each" : ""})
      </p>
      <ul className="tb-estimate__lines" aria-label="Tokens per action, per month">
        {estimate.lines.map((line) => (
          <li key={line.action}>
            <span>{actionLabel(line.action)}</span>
            <span>{formatTokens(line.tokens_per_month)}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}
