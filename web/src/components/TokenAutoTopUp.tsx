"use client";

import { useEffect, useRef, useState, type FormEvent } from "react";
import type { AutoTopUp, AutoTopUpAttempt, TokenPackage } from "../api/client";
import { useTokenBillingClient } from "../api/context";
import { useApi } from "../api/useApi";
import { useLiveBalance } from "../api/useLiveBalance";
import { formatDateTime, formatPrice, formatTokens } from "../format";
import { ErrorMessage, Loading } from "./parts/Status";
import { TokenCheckout } from "./TokenCheckout";

export interface TokenAutoTopUpProps {
  customerId: string;
  /** Checkout return pages for saving a card (defaults as in TokenCheckout). */
  successUrl?: string;
  cancelUrl?: string;
  /** Follows the recovery or checkout URL; default `window.location.assign`. */
  redirect?: (url: string) => void;
  /** Follow the live balance: attempts and state reload when the balance moves (default
   * true). Off when a parent reloads it through `refreshKey`, as the dashboard does. */
  live?: boolean;
  /** Load again when this changes (e.g. the dashboard's data). */
  refreshKey?: unknown;
}

const TOKENS = /^\d{1,9}(\.\d{1,3})?$/;
const WHOLE_DOLLARS = /^\d{1,5}$/;
const CHARGES_PER_DAY = /^(10|[1-9])$/;

const STATE_LABELS: Record<AutoTopUp["state"], string> = {
  disabled: "Off",
  active: "On",
  paused: "Paused",
  needs_authentication: "Needs your confirmation",
};

const REASONS: Record<string, string> = {
  declined_repeatedly: "the saved card was declined 3 times in a row",
  authentication_required: "your bank asked you to confirm the payment",
  card_detached: "the saved card was removed",
  card_expired: "the saved card has expired",
};

const ATTEMPT_LABELS: Record<string, string> = {
  admitted: "In progress",
  succeeded: "Paid",
  processing: "Processing",
  declined: "Declined",
  authentication_required: "Needs confirmation",
  recovered: "Confirmed and paid",
  provider_unavailable: "Stripe unavailable, not charged by us",
  error: "Failed",
  cap_reached: "Skipped: daily limit reached",
  monthly_cap_reached: "Skipped: monthly limit reached",
  in_flight: "Skipped: a top-up was in progress",
  paused: "Skipped: paused",
  disabled: "Skipped: off",
  no_card: "Skipped: no saved card",
  card_expired: "Skipped: card expired",
};

/** Auto top-up, from `GET/PUT /api/v1/customers/{id}/tokens/auto-top-up`: the setting
 * (toggle, pack, threshold, monthly cap, consent when enabling), the saved card, the
 * paused or needs-confirmation state with its recovery button, and the last attempts. */
export function TokenAutoTopUp({
  customerId,
  successUrl,
  cancelUrl,
  redirect,
  live = true,
  refreshKey,
}: TokenAutoTopUpProps) {
  const settings = useApi(
    (client, signal) => client.getAutoTopUp(customerId, signal),
    [customerId],
  );
  const packages = useApi((client, signal) => client.listPackages(signal), []);
  const { state, reload } = settings;
  // A top-up, a refused charge or a pause follows a balance change: reload on one.
  useLiveBalance(customerId, { enabled: live, onResync: reload });
  // A new refreshKey reloads over the data on screen (a new customer starts from loading).
  const firstKey = useRef(true);
  useEffect(() => {
    if (firstKey.current) {
      firstKey.current = false;
      return;
    }
    reload();
  }, [refreshKey, reload]);
  return (
    <section className="tb-root tb-card tb-auto-top-up" aria-labelledby="tb-auto-top-up-title">
      <h2 id="tb-auto-top-up-title">Auto top-up</h2>
      {(state.status === "loading" || packages.state.status === "loading") && (
        <Loading label="Loading auto top-up…" />
      )}
      {state.status === "error" && (
        <ErrorMessage error={state.error} context="Could not load auto top-up" onRetry={reload} />
      )}
      {state.status === "ready" && packages.state.status === "ready" && (
        <AutoTopUpBody
          key={customerId}
          data={state.data}
          packages={packages.state.data.data}
          customerId={customerId}
          onSaved={reload}
          successUrl={successUrl}
          cancelUrl={cancelUrl}
          redirect={redirect}
        />
      )}
    </section>
  );
}

interface BodyProps {
  data: AutoTopUp;
  packages: TokenPackage[];
  customerId: string;
  onSaved: () => void;
  successUrl: string | undefined;
  cancelUrl: string | undefined;
  redirect: ((url: string) => void) | undefined;
}

function AutoTopUpBody({
  data,
  packages,
  customerId,
  onSaved,
  successUrl,
  cancelUrl,
  redirect,
}: BodyProps) {
  const follow = redirect ?? ((url: string) => window.location.assign(url));
  return (
    <>
      <p>
        Status:{" "}
        <strong data-testid="auto-top-up-state" data-state={data.state}>
          {STATE_LABELS[data.state]}
        </strong>
      </p>
      {data.state === "needs_authentication" && (
        <div className="tb-notice tb-notice--warning" role="alert">
          <p>
            Auto top-up is paused: {REASONS.authentication_required}. Confirm it to buy the tokens
            and resume.
          </p>
          {data.recovery_url && (
            <button
              type="button"
              className="tb-button tb-button--primary"
              onClick={() => follow(data.recovery_url as string)}
            >
              Confirm the payment
            </button>
          )}
        </div>
      )}
      {data.state === "paused" && (
        <div className="tb-notice tb-notice--warning" role="alert">
          <p>
            Auto top-up is paused: {REASONS[data.paused_reason ?? ""] ?? data.paused_reason}. Save a
            new card to resume.
          </p>
        </div>
      )}
      {data.disabled_reason && !data.enabled && (
        <p className="tb-muted" data-testid="auto-top-up-disabled-reason">
          Turned off because {REASONS[data.disabled_reason] ?? data.disabled_reason}.
        </p>
      )}
      <SavedCard
        data={data}
        customerId={customerId}
        successUrl={successUrl}
        cancelUrl={cancelUrl}
        redirect={redirect}
      />
      <SettingsForm
        key={settingsKey(data)}
        data={data}
        packages={packages}
        customerId={customerId}
        onSaved={onSaved}
      />
      <AttemptList attempts={data.attempts} packages={packages} />
    </>
  );
}

function SavedCard({
  data,
  customerId,
  successUrl,
  cancelUrl,
  redirect,
}: Omit<BodyProps, "packages" | "onSaved">) {
  const card = data.card;
  const needsCard = !card || data.state === "paused";
  return (
    <div className="tb-auto-top-up__card">
      <p data-testid="auto-top-up-card">
        {card
          ? `Saved card: ${(card.brand ?? "card").toUpperCase()} •••• ${card.last4 ?? "????"}`
          : "No saved card yet: buy a pack and save the card to turn auto top-up on."}
      </p>
      {needsCard && (
        <TokenCheckout
          customerId={customerId}
          packageId="starter"
          packageName="Starter"
          successUrl={successUrl}
          cancelUrl={cancelUrl}
          redirect={redirect}
          variant="secondary"
          saveCard
        >
          {card ? "Save a new card (buy Starter)" : "Buy Starter and save the card"}
        </TokenCheckout>
      )}
    </div>
  );
}

interface FormProps {
  data: AutoTopUp;
  packages: TokenPackage[];
  customerId: string;
  onSaved: () => void;
}

type SaveState = { step: "idle" } | { step: "saving" } | { step: "error"; error: unknown };

/** The saved settings as the form shows them: a form is dirty when any field differs. */
function savedFields(data: AutoTopUp, packages: TokenPackage[]) {
  return {
    enabled: data.enabled,
    packageId: data.package_id ?? packages[0]?.id ?? "starter",
    threshold: data.threshold,
    capDollars:
      data.max_cents_per_month === null ? "" : String(Math.floor(data.max_cents_per_month / 100)),
    perDay: String(data.max_charges_per_day),
  };
}

/** Remounts the form (fresh fields, consent unticked) when the saved settings change. */
export function settingsKey(data: AutoTopUp): string {
  return JSON.stringify([
    data.enabled,
    data.package_id,
    data.threshold,
    data.max_cents_per_month,
    data.max_charges_per_day,
  ]);
}

/** The terms the customer agrees to, in figures: what the consent text says in words. */
function termsSummary(
  pack: TokenPackage | undefined,
  threshold: string,
  perDay: string,
  capDollars: string,
): string {
  const what = pack
    ? `${pack.name} packs (${formatTokens(pack.total_tokens)} tokens for ${formatPrice(pack.price_cents, pack.currency)} each)`
    : "the pack above";
  const cap = WHOLE_DOLLARS.test(capDollars) ? `$${capDollars}` : "the monthly limit";
  return `Your terms: ${what} whenever available tokens fall below ${formatTokens(threshold)}; at most ${perDay} charges a day and ${cap} a month.`;
}

function SettingsForm({ data, packages, customerId, onSaved }: FormProps) {
  const client = useTokenBillingClient();
  const saved = savedFields(data, packages);
  const [enabled, setEnabled] = useState(saved.enabled);
  const [packageId, setPackageId] = useState(saved.packageId);
  const [threshold, setThreshold] = useState(saved.threshold);
  const [capDollars, setCapDollars] = useState(saved.capDollars);
  const [perDay, setPerDay] = useState(saved.perDay);
  const [consented, setConsented] = useState(false);
  const [save, setSave] = useState<SaveState>({ step: "idle" });

  const dirty =
    enabled !== saved.enabled ||
    packageId !== saved.packageId ||
    threshold !== saved.threshold ||
    capDollars !== saved.capDollars ||
    perDay !== saved.perDay;
  // Turning it on, or changing what it may charge while on: the customer agrees again (the
  // API records the consent with every setting that enables it).
  const needsConsent = enabled && dirty;
  const problems: string[] = [];
  if (!TOKENS.test(threshold)) problems.push("The threshold must be a number of tokens.");
  if (enabled && !WHOLE_DOLLARS.test(capDollars)) {
    problems.push("Set a monthly limit in whole dollars.");
  }
  if (!CHARGES_PER_DAY.test(perDay)) problems.push("Allow 1 to 10 charges a day.");
  if (enabled && !data.card) problems.push("Save a card first.");
  if (needsConsent && !consented) {
    problems.push(
      data.enabled
        ? "Agree to the terms above to save these changes."
        : "Agree to the terms above to turn it on.",
    );
  }
  const pack = packages.find((candidate) => candidate.id === packageId);

  async function submit(event: FormEvent): Promise<void> {
    event.preventDefault();
    if (problems.length > 0 || !dirty) return;
    setSave({ step: "saving" });
    try {
      await client.updateAutoTopUp(customerId, {
        enabled,
        package_id: packageId,
        threshold,
        max_charges_per_day: Number(perDay),
        ...(WHOLE_DOLLARS.test(capDollars)
          ? { max_cents_per_month: Number(capDollars) * 100 }
          : {}),
        ...(enabled ? { consent_text_version: data.consent_text_version } : {}),
      });
      setSave({ step: "idle" });
      onSaved(); // the saved settings come back: the form starts again from them
    } catch (error) {
      setSave({ step: "error", error });
    }
  }

  return (
    <form className="tb-auto-top-up__form" onSubmit={(event) => void submit(event)}>
      <label className="tb-check">
        <input
          type="checkbox"
          role="switch"
          checked={enabled}
          onChange={(event) => setEnabled(event.target.checked)}
        />
        Buy tokens automatically when they run low
      </label>
      <div className="tb-auto-top-up__fields">
        <label className="tb-field tb-field--pack">
          <span>Pack</span>
          <select value={packageId} onChange={(event) => setPackageId(event.target.value)}>
            {packages.map((option) => (
              <option key={option.id} value={option.id}>
                {option.name}: {formatTokens(option.total_tokens)} tokens for{" "}
                {formatPrice(option.price_cents, option.currency)}
              </option>
            ))}
          </select>
        </label>
        <label className="tb-field">
          <span>When available tokens fall below</span>
          <input
            inputMode="decimal"
            value={threshold}
            onChange={(event) => setThreshold(event.target.value.trim())}
            aria-label="Threshold in tokens"
          />
        </label>
        <label className="tb-field">
          <span>At most this many charges a day</span>
          <input
            inputMode="numeric"
            value={perDay}
            onChange={(event) => setPerDay(event.target.value.trim())}
            aria-label="Charges a day at most"
          />
        </label>
        <label className="tb-field">
          <span>Spend at most, in dollars a month</span>
          <input
            inputMode="numeric"
            value={capDollars}
            onChange={(event) => setCapDollars(event.target.value.trim())}
            aria-label="Monthly limit in dollars"
          />
        </label>
      </div>
      {needsConsent && (
        <div className="tb-auto-top-up__consent" data-testid="auto-top-up-consent">
          <p>{data.consent_text}</p>
          <p className="tb-muted" data-testid="auto-top-up-terms">
            {termsSummary(pack, threshold, perDay, capDollars)}
          </p>
          <label className="tb-check">
            <input
              type="checkbox"
              checked={consented}
              onChange={(event) => setConsented(event.target.checked)}
            />
            I agree
          </label>
        </div>
      )}
      {dirty && problems.length > 0 && save.step !== "saving" && (
        <ul className="tb-problems" aria-live="polite">
          {problems.map((problem) => (
            <li key={problem}>{problem}</li>
          ))}
        </ul>
      )}
      <div className="tb-auto-top-up__actions">
        <button
          type="submit"
          className="tb-button tb-button--primary"
          disabled={!dirty || problems.length > 0 || save.step === "saving"}
        >
          {save.step === "saving" ? "Saving…" : "Save auto top-up"}
        </button>
        {!dirty && save.step === "idle" && (
          <span className="tb-muted" data-testid="auto-top-up-saved">
            {data.enabled ? "Saved: auto top-up is on." : "Auto top-up is off."}
          </span>
        )}
      </div>
      {save.step === "error" && (
        <ErrorMessage error={save.error} context="Could not save auto top-up" />
      )}
    </form>
  );
}

function AttemptList({
  attempts,
  packages,
}: {
  attempts: AutoTopUpAttempt[];
  packages: TokenPackage[];
}) {
  if (attempts.length === 0) return <p className="tb-muted">No automatic top-ups yet.</p>;
  const names = new Map(packages.map((pack) => [pack.id, pack.name]));
  return (
    <div>
      <h3>Last attempts</h3>
      <ul className="tb-auto-top-up__attempts" data-testid="auto-top-up-attempts">
        {attempts.map((attempt) => (
          <li key={attempt.id} data-status={attempt.status}>
            {formatDateTime(attempt.created_at)}: {ATTEMPT_LABELS[attempt.status] ?? attempt.status}
            {attempt.packs > 0 &&
              ` — ${attempt.packs} × ${names.get(attempt.package_id ?? "") ?? attempt.package_id}, ${formatPrice(attempt.amount_cents, attempt.currency ?? "usd")}`}
            {attempt.credited ? " (credited)" : ""}
          </li>
        ))}
      </ul>
    </div>
  );
}
