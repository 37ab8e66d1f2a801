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
    <form className="grid max-w-xs gap-3" onSubmit={(event) => void submit(event)}>
      <h1 className="text-2xl font-bold">Sign in</h1>
      <label className="grid gap-1">
        Customer id
        <input
          className="rounded border border-gray-300 px-2 py-1"
          value={customerId}
          onChange={(event) => setCustomerId(event.target.value)}
          required
        />
      </label>
      <button type="submit" className="rounded bg-blue-700 px-3 py-2 font-semibold text-white">
        Sign in
      </button>
      {error && <p role="alert">{error}</p>}
    </form>
  );
}
