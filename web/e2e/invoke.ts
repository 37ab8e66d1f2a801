// The debit function through the dev server's Lambda Invoke API, as a VM agent calls it:
// with the per-VM credential the control plane would give that VM (RequireAgentCredentials).
import { expect } from "vitest";

/** The credential `POST /_local/agent-credential` mints for (customer, VM). */
export async function agentCredential(
  baseUrl: string,
  customerId: string,
  vmId: string,
): Promise<string> {
  const reply = await fetch(`${baseUrl}/_local/agent-credential`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ customer_id: customerId, vm_id: vmId }),
  });
  expect(reply.status).toBe(200);
  return ((await reply.json()) as { credential: string }).credential;
}

/** Invoke one op; the reply must be `ok`. The VM is the payload's `vm_id`, or "vm-e2e". */
export async function invokeDebit(
  baseUrl: string,
  payload: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const vmId = typeof payload.vm_id === "string" ? payload.vm_id : "vm-e2e";
  const credential = await agentCredential(baseUrl, String(payload.customer_id), vmId);
  const reply = await fetch(`${baseUrl}/2015-03-31/functions/DebitFunction/invocations`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ...payload, credential }),
  });
  expect(reply.status).toBe(200);
  const result = (await reply.json()) as Record<string, unknown>;
  expect(result, JSON.stringify(result)).toMatchObject({ ok: true });
  return result;
}
