"use client";

// The app's own navigation, in Tailwind utilities as the rest of a create-next-app app.
import Link from "next/link";
import { signOut, useSession } from "./session";

export function Nav() {
  const session = useSession();
  return (
    <nav
      className="flex flex-wrap items-center gap-x-4 gap-y-2 border-b border-gray-200 px-4 py-3"
      aria-label="Main"
    >
      <Link href="/" className="font-bold">
        Token billing
      </Link>
      <Link href="/pricing" className="text-blue-700 hover:underline">
        Pricing
      </Link>
      <Link href="/dashboard" className="text-blue-700 hover:underline">
        Dashboard
      </Link>
      <Link href="/activity" className="text-blue-700 hover:underline">
        Activity
      </Link>
      <span className="ml-auto flex min-w-0 items-center gap-2">
        {session ? (
          <>
            <strong data-testid="signed-in-as" className="truncate" title={session.customerId}>
              {session.customerId}
            </strong>
            <button
              type="button"
              onClick={signOut}
              className="shrink-0 rounded border border-gray-300 px-3 py-1 whitespace-nowrap"
            >
              Sign out
            </button>
          </>
        ) : (
          <Link href="/sign-in" className="text-blue-700 hover:underline">
            Sign in
          </Link>
        )}
      </span>
    </nav>
  );
}
