// Rendered only inside the "use client" components, so no directive of its own.
import type { Balance } from "../../api/client";
import { formatDateTime, formatTokens } from "../../format";

/** "Reserved by running VMs": `held` and the active holds (VM, amount, expiry). */
export function ReservedHolds({ balance }: { balance: Balance }) {
  return (
    <section className="tb-card tb-holds" aria-labelledby="tb-holds-title">
      <h2 id="tb-holds-title">Reserved by running VMs</h2>
      <p className="tb-holds__total">
        <strong data-testid="held-tokens">{formatTokens(balance.held)}</strong> tokens reserved
      </p>
      {balance.active_holds.length === 0 ? (
        <p className="tb-muted">No VM is holding tokens right now.</p>
      ) : (
        <table className="tb-table">
          <caption className="tb-sr-only">Active holds</caption>
          <thead>
            <tr>
              <th scope="col">VM</th>
              <th scope="col">Tokens</th>
              <th scope="col">Expires</th>
            </tr>
          </thead>
          <tbody>
            {balance.active_holds.map((hold) => (
              <tr key={hold.id}>
                <td>{hold.vm_id ?? "—"}</td>
                <td>{formatTokens(hold.amount)}</td>
                <td>
                  <time dateTime={hold.expires_at}>{formatDateTime(hold.expires_at)}</time>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
