"use client";

import Link from "next/link";
import { signOut, useSession } from "./session";

export function Nav() {
  const session = useSession();
  return (
    <nav className="example-nav" aria-label="Main">
      <Link href="/">Token billing</Link>
      <Link href="/pricing">Pricing</Link>
      <Link href="/dashboard">Dashboard</Link>
      <span className="example-nav__session">
        {session ? (
          <>
            Signed in as <strong data-testid="signed-in-as">{session.customerId}</strong>{" "}
            <button type="button" onClick={signOut}>
              Sign out
            </button>
          </>
        ) : (
          <Link href="/sign-in">Sign in</Link>
        )}
      </span>
    </nav>
  );
}
