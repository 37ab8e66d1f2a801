"use client";

import { useRouter } from "next/navigation";
import { useState, type FormEvent } from "react";
import { signIn } from "../session";

export default function SignInPage() {
  const router = useRouter();
  const [customerId, setCustomerId] = useState("");
  const [error, setError] = useState<string | null>(null);

  async function submit(event: FormEvent<HTMLFormElement>): Promise<void> {
    event.preventDefault();
    setError(null);
    try {
      await signIn(customerId.trim());
      router.push("/pricing");
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
    }
  }

  return (
    <form className="example-sign-in" onSubmit={(event) => void submit(event)}>
      <h1>Sign in</h1>
      <label>
        Customer id
        <input
          value={customerId}
          onChange={(event) => setCustomerId(event.target.value)}
          required
        />
      </label>
      <button type="submit">Sign in</button>
      {error && <p role="alert">{error}</p>}
    </form>
  );
}
