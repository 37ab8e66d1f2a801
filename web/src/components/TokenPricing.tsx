"use client";

import { useState, type ReactNode } from "react";
import type { TokenPackage } from "../api/client";
import { useApi } from "../api/useApi";
import { ESTIMATE_ASSUMPTION, formatHours, formatPrice, formatTokens } from "../format";
import { PricingCalculator } from "./PricingCalculator";
import { ErrorMessage, Loading } from "./parts/Status";
import { TokenCheckout } from "./TokenCheckout";

export interface TokenPricingProps {
  /** The signed-in customer; without one the cards link to `signInHref` instead of "Buy". */
  customerId?: string | null;
  signInHref?: string;
  successUrl?: string;
  cancelUrl?: string;
  redirect?: (url: string) => void;
  /** Show the usage calculator under the packages (default true). */
  showCalculator?: boolean;
}

/** The pricing page: the packages of `GET /api/v1/token-packages` and the usage calculator,
 * whose recommendation is highlighted. */
export function TokenPricing({
  customerId,
  signInHref = "/sign-in",
  successUrl,
  cancelUrl,
  redirect,
  showCalculator = true,
}: TokenPricingProps) {
  const packages = useApi((client, signal) => client.listPackages(signal), []);
  const [recommended, setRecommended] = useState<string | null>(null);

  return (
    <div className="tb-root tb-pricing">
      <header className="tb-pricing__header">
        <h1>Token packs</h1>
        <p>Pay once, use tokens as you go. Tokens never expire; there is no monthly fee.</p>
      </header>
      {packages.state.status === "loading" && <Loading label="Loading token packs…" />}
      {packages.state.status === "error" && (
        <ErrorMessage
          error={packages.state.error}
          context="Could not load token packs"
          onRetry={packages.reload}
        />
      )}
      {packages.state.status === "ready" && (
        <ul className="tb-packages" aria-label="Token packs">
          {packages.state.data.data.map((pack) => (
            <PackageCard
              key={pack.id}
              pack={pack}
              recommended={pack.id === recommended}
              action={
                customerId ? (
                  <TokenCheckout
                    customerId={customerId}
                    packageId={pack.id}
                    packageName={pack.name}
                    successUrl={successUrl}
                    cancelUrl={cancelUrl}
                    redirect={redirect}
                    variant={pack.id === recommended ? "primary" : "secondary"}
                  >
                    Buy {pack.name}
                  </TokenCheckout>
                ) : (
                  <a className="tb-button tb-button--secondary" href={signInHref}>
                    Sign in to buy {pack.name}
                  </a>
                )
              }
            />
          ))}
        </ul>
      )}
      {packages.state.status === "ready" && (
        <p className="tb-muted tb-pricing__note" data-testid="estimate-assumption">
          {ESTIMATE_ASSUMPTION}
        </p>
      )}
      {showCalculator && (
        <PricingCalculator
          onEstimate={(estimate) => setRecommended(estimate.recommended_package.id)}
        />
      )}
    </div>
  );
}

interface PackageCardProps {
  pack: TokenPackage;
  recommended: boolean;
  action: ReactNode;
}

function PackageCard({ pack, recommended, action }: PackageCardProps) {
  const titleId = `tb-package-${pack.id}`;
  return (
    <li
      className={`tb-card tb-package${recommended ? " tb-package--recommended" : ""}`}
      aria-labelledby={titleId}
      data-testid={`package-${pack.id}`}
      data-recommended={recommended}
    >
      {recommended && <p className="tb-badge tb-badge--accent">Recommended for your usage</p>}
      <h2 id={titleId} className="tb-package__name">
        {pack.name}
      </h2>
      <p className="tb-package__price">{formatPrice(pack.price_cents, pack.currency)}</p>
      <dl className="tb-facts">
        <div>
          <dt>Tokens</dt>
          <dd>{formatTokens(pack.tokens)}</dd>
        </div>
        <div>
          <dt>Bonus</dt>
          <dd>{pack.bonus_mt > 0 ? `+${formatTokens(pack.bonus)}` : "—"}</dd>
        </div>
        <div>
          <dt>Total</dt>
          <dd>{formatTokens(pack.total_tokens)} tokens</dd>
        </div>
        <div>
          <dt>Estimated use</dt>
          <dd>≈ {formatHours(pack.estimated_hours)}</dd>
        </div>
      </dl>
      {action}
    </li>
  );
}
