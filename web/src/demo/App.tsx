import {
  Component,
  useEffect,
  useMemo,
  useState,
  type ErrorInfo,
  type FormEvent,
  type ReactNode,
} from "react";
import { createClient } from "../api/client";
import { TokenBillingProvider } from "../api/context";
import { TokenCheckoutStatus } from "../components/TokenCheckout";
import { TokenDashboard } from "../components/TokenDashboard";
import { TokenPricing } from "../components/TokenPricing";
import { ErrorMessage, Loading } from "../components/parts/Status";
import {
  cognitoSignOutUrl,
  currentSession,
  finishCognitoSignIn,
  signInLocal,
  signOut,
  startCognitoSignIn,
  type Session,
} from "./auth";
import { loadConfig, type AppConfig, type CognitoIdentity } from "./config";
import { Link, navigate, useRoute, type Route } from "./router";

type Boot =
  { step: "loading" } | { step: "ready"; config: AppConfig } | { step: "error"; error: unknown };

export function App() {
  const [boot, setBoot] = useState<Boot>({ step: "loading" });
  useEffect(() => {
    loadConfig()
      .then((config) => setBoot({ step: "ready", config }))
      .catch((error: unknown) => setBoot({ step: "error", error }));
  }, []);
  if (boot.step === "loading") {
    return (
      <main className="demo-main">
        <Loading label="Starting…" />
      </main>
    );
  }
  if (boot.step === "error") {
    return (
      <main className="demo-main">
        <ErrorMessage
          error={boot.error}
          context="The app could not start"
          onRetry={() => window.location.reload()}
        />
      </main>
    );
  }
  return (
    <ErrorBoundary>
      <ConfiguredApp config={boot.config} />
    </ErrorBoundary>
  );
}

function ConfiguredApp({ config }: { config: AppConfig }) {
  const [session, setSession] = useState<Session | null>(() => currentSession());
  const client = useMemo(
    () =>
      createClient({
        baseUrl: config.apiBaseUrl,
        getToken: () => currentSession()?.token,
        socketUrl: config.socketUrl,
      }),
    [config.apiBaseUrl, config.socketUrl],
  );
  const route = useRoute();

  function onSignOut(): void {
    signOut();
    setSession(null);
    if (config.identity.provider === "cognito") {
      window.location.assign(cognitoSignOutUrl(config.identity, window.location.origin));
    } else {
      navigate("/");
    }
  }

  return (
    <TokenBillingProvider client={client}>
      <Header session={session} onSignOut={onSignOut} />
      <main className="demo-main" id="main">
        <Page route={route} config={config} session={session} onSignedIn={setSession} />
      </main>
    </TokenBillingProvider>
  );
}

function Header({ session, onSignOut }: { session: Session | null; onSignOut: () => void }) {
  return (
    <header className="demo-header">
      <a className="demo-skip" href="#main">
        Skip to content
      </a>
      <Link to="/" className="demo-brand">
        Token billing
      </Link>
      <nav aria-label="Main">
        <Link to="/pricing">Pricing</Link>
        <Link to="/dashboard">Dashboard</Link>
      </nav>
      <div className="demo-account">
        {session ? (
          <>
            <span
              className="demo-account__who"
              data-testid="signed-in-as"
              title={session.customerId ?? "Support (admin)"}
            >
              {session.customerId ?? "Support (admin)"}
            </span>
            <button type="button" className="tb-button tb-button--secondary" onClick={onSignOut}>
              Sign out
            </button>
          </>
        ) : (
          <Link to="/sign-in" className="tb-button tb-button--secondary">
            Sign in
          </Link>
        )}
      </div>
    </header>
  );
}

interface PageProps {
  route: Route;
  config: AppConfig;
  session: Session | null;
  onSignedIn: (session: Session) => void;
}

function Page({ route, config, session, onSignedIn }: PageProps) {
  switch (route.path) {
    case "/":
    case "/pricing":
      return <TokenPricing customerId={session?.customerId} signInHref="/sign-in?next=/pricing" />;
    case "/dashboard":
      return <DashboardPage route={route} session={session} />;
    case "/checkout/success":
    case "/checkout/cancel":
      return (
        <RequireSession session={session} next={route.path}>
          {(signedIn) => (
            <div className="demo-stack">
              {signedIn.customerId === null ? (
                <p role="alert">Support accounts do not buy tokens: sign in as the customer.</p>
              ) : (
                <TokenCheckoutStatus
                  customerId={signedIn.customerId}
                  orderId={route.query.get("order_id")}
                  outcome={route.path === "/checkout/success" ? "success" : "cancel"}
                />
              )}
              <p>
                <Link to="/dashboard" className="tb-button tb-button--primary">
                  Go to your dashboard
                </Link>{" "}
                <Link to="/pricing" className="tb-button tb-button--secondary">
                  Back to pricing
                </Link>
              </p>
            </div>
          )}
        </RequireSession>
      );
    case "/sign-in":
      return <SignInPage config={config} next={route.query.get("next")} onSignedIn={onSignedIn} />;
    case "/auth/callback":
      return config.identity.provider === "cognito" ? (
        <CognitoCallback
          identity={config.identity}
          search={route.query.toString()}
          onSignedIn={onSignedIn}
        />
      ) : (
        <ErrorMessage
          error={new Error("This deployment signs in without Cognito.")}
          context="Could not sign in"
        />
      );
    default:
      return (
        <section className="tb-card">
          <h1>Page not found</h1>
          <p>
            Nothing lives at <code>{route.path}</code>. <Link to="/">Go to pricing</Link>.
          </p>
        </section>
      );
  }
}

function RequireSession({
  session,
  next,
  children,
}: {
  session: Session | null;
  next: string;
  children: (session: Session) => ReactNode;
}) {
  if (!session) {
    return (
      <section className="tb-card demo-narrow">
        <h1>Sign in</h1>
        <p>Sign in to see your tokens.</p>
        <Link
          to={`/sign-in?next=${encodeURIComponent(next)}`}
          className="tb-button tb-button--primary"
        >
          Sign in
        </Link>
      </section>
    );
  }
  return <>{children(session)}</>;
}

function DashboardPage({ route, session }: { route: Route; session: Session | null }) {
  // Support staff (admin) name the customer; customers see their own account. A customer
  // naming another account gets the API's 403, shown as an error.
  const named = route.query.get("customer");
  return (
    <RequireSession session={session} next={`/dashboard${named ? `?customer=${named}` : ""}`}>
      {(signedIn) => {
        const customerId = named ?? signedIn.customerId;
        if (!customerId) return <CustomerPicker />;
        return <TokenDashboard key={customerId} customerId={customerId} />;
      }}
    </RequireSession>
  );
}

function CustomerPicker() {
  const [customer, setCustomer] = useState("");
  function onSubmit(event: FormEvent<HTMLFormElement>): void {
    event.preventDefault();
    if (customer.trim()) navigate(`/dashboard?customer=${encodeURIComponent(customer.trim())}`);
  }
  return (
    <form className="tb-card demo-narrow" onSubmit={onSubmit}>
      <h1>Open a customer's dashboard</h1>
      <div className="tb-field">
        <label htmlFor="customer-to-open">Customer id</label>
        <input
          id="customer-to-open"
          value={customer}
          onChange={(event) => setCustomer(event.target.value)}
        />
      </div>
      <p>
        <button type="submit" className="tb-button tb-button--primary">
          Open dashboard
        </button>
      </p>
    </form>
  );
}

interface SignInPageProps {
  config: AppConfig;
  next: string | null;
  onSignedIn: (session: Session) => void;
}

function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/dashboard";
}

function SignInPage({ config, next, onSignedIn }: SignInPageProps) {
  const [customer, setCustomer] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const identity = config.identity;

  if (identity.provider === "cognito") {
    return (
      <section className="tb-card demo-narrow">
        <h1>Sign in</h1>
        <p>You will sign in on the account page, then come back here.</p>
        <button
          type="button"
          className="tb-button tb-button--primary"
          onClick={() => {
            startCognitoSignIn(identity).catch(setError);
          }}
        >
          Continue to sign-in
        </button>
        {error !== null && <ErrorMessage error={error} context="Could not start the sign-in" />}
      </section>
    );
  }

  async function signIn(who: { customerId: string } | { admin: true }): Promise<void> {
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await signInLocal(config, who));
      navigate(safeNext(next), { replace: true });
    } catch (caught) {
      setError(caught);
      setBusy(false);
    }
  }

  function onSubmit(event: FormEvent<HTMLFormElement>): void {
    event.preventDefault();
    if (customer.trim()) void signIn({ customerId: customer.trim() });
  }

  return (
    <form className="tb-card demo-narrow" onSubmit={onSubmit} aria-labelledby="sign-in-title">
      <h1 id="sign-in-title">Sign in</h1>
      <p className="tb-muted">
        Development sign-in of <code>make dev</code>: any customer id, no password.
      </p>
      <div className="tb-field">
        <label htmlFor="sign-in-customer">Customer id</label>
        <input
          id="sign-in-customer"
          name="customer"
          autoComplete="username"
          placeholder="cust_demo"
          pattern="[A-Za-z0-9][A-Za-z0-9_\-]*"
          maxLength={64}
          required
          value={customer}
          onChange={(event) => setCustomer(event.target.value)}
        />
      </div>
      {error !== null && <ErrorMessage error={error} context="Could not sign in" />}
      <p className="demo-actions">
        <button type="submit" className="tb-button tb-button--primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <button
          type="button"
          className="tb-button tb-button--secondary"
          disabled={busy}
          onClick={() => void signIn({ admin: true })}
        >
          Sign in as support (admin)
        </button>
      </p>
    </form>
  );
}

function CognitoCallback({
  identity,
  search,
  onSignedIn,
}: {
  identity: CognitoIdentity;
  search: string;
  onSignedIn: (session: Session) => void;
}) {
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    finishCognitoSignIn(identity, search).then(
      (session) => {
        onSignedIn(session);
        navigate("/dashboard", { replace: true });
      },
      (caught: unknown) => setError(caught),
    );
    // Once: the code and this tab's verifier are consumed.
  }, []);
  if (error !== null) return <ErrorMessage error={error} context="Could not sign in" />;
  return <Loading label="Signing you in…" />;
}

class ErrorBoundary extends Component<{ children: ReactNode }, { error: unknown }> {
  override state: { error: unknown } = { error: null };

  static getDerivedStateFromError(error: unknown): { error: unknown } {
    return { error };
  }

  override componentDidCatch(error: unknown, info: ErrorInfo): void {
    console.error("The page failed to render", error, info.componentStack);
  }

  override render(): ReactNode {
    if (this.state.error !== null) {
      return (
        <main className="demo-main">
          <ErrorMessage
            error={this.state.error}
            context="This page failed"
            onRetry={() => window.location.reload()}
          />
        </main>
      );
    }
    return this.props.children;
  }
}
