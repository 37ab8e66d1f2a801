// Rendered only inside the "use client" components, so no directive of its own.
import { isApiError } from "../../api/client";

export function Loading({ label }: { label: string }) {
  return (
    <div className="tb-loading" role="status" aria-live="polite">
      <span className="tb-spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

interface Explained {
  title: string;
  detail: string;
}

/** What an error means to the reader, from the client's typed ApiError. */
export function explainError(error: unknown): Explained {
  if (!isApiError(error)) {
    const detail = error instanceof Error ? error.message : String(error);
    return { title: "Something went wrong", detail };
  }
  switch (error.code) {
    case "network_error":
    case "timeout":
      return {
        title: "Cannot reach the billing service",
        detail: `${error.message} Check your connection, then try again.`,
      };
    case "cors_refused":
      return {
        title: "The billing service does not accept requests from this page",
        detail: `${error.message} This is a setup problem of the site, not of your connection.`,
      };
    case "unauthorized":
      return { title: "Please sign in again", detail: "Your session is missing or has expired." };
    case "forbidden":
      return {
        title: "You don't have access to this account",
        detail: "Sign in as the account's owner to see its tokens.",
      };
    case "service_unavailable":
      return { title: "The billing service is busy", detail: "Please try again in a moment." };
    default:
      return { title: "Something went wrong", detail: error.message };
  }
}

export interface ErrorMessageProps {
  error: unknown;
  /** What failed, e.g. "Could not load your dashboard". */
  context?: string;
  onRetry?: () => void;
}

export function ErrorMessage({ error, context, onRetry }: ErrorMessageProps) {
  const { title, detail } = explainError(error);
  return (
    <div className="tb-error" role="alert">
      <p className="tb-error__title">
        {context ? `${context}: ` : ""}
        {title}
      </p>
      <p className="tb-error__detail">{detail}</p>
      {onRetry && (
        <button type="button" className="tb-button tb-button--secondary" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}
