// Rendered only inside the "use client" components, so no directive of its own.
import type { Order } from "../../api/client";
import {
  actionLabel,
  formatDate,
  formatPrice,
  formatTokens,
  mtToDecimal,
  orderStatusLabel,
} from "../../format";

/** A document's address as a link target: only http(s), whatever the API returned. */
function documentHref(url: string | null): string | null {
  return url && /^https?:\/\//i.test(url) ? url : null;
}

/** What was charged: the catalog price, or the total with the tax Stripe added on top. */
function charged(order: Order): string {
  if (order.tax_cents && order.total_cents !== null) {
    const tax = formatPrice(order.tax_cents, order.currency);
    return `${formatPrice(order.total_cents, order.currency)} incl. ${tax} tax`;
  }
  return formatPrice(order.price_cents, order.currency);
}

/** The order's invoice and receipt, once Stripe has reported them. */
function Documents({ order }: { order: Order }) {
  const invoice = documentHref(order.invoice_url);
  const pdf = documentHref(order.invoice_pdf);
  const receipt = documentHref(order.receipt_url);
  if (!invoice && !receipt) return null;
  return (
    <span className="tb-orders__documents">
      {invoice && (
        <a href={invoice} target="_blank" rel="noopener noreferrer">
          Invoice
        </a>
      )}
      {invoice && order.invoice_number && <span className="tb-muted">{order.invoice_number}</span>}
      {pdf && (
        <a href={pdf} target="_blank" rel="noopener noreferrer" download>
          PDF
        </a>
      )}
      {receipt && (
        <a href={receipt} target="_blank" rel="noopener noreferrer">
          Receipt
        </a>
      )}
    </span>
  );
}

/** The customer's recent token pack orders, their status, and their invoice and receipt. */
export function OrderList({ orders }: { orders: Order[] }) {
  return (
    <section className="tb-card tb-orders" aria-labelledby="tb-orders-title">
      <h2 id="tb-orders-title">Recent orders</h2>
      {orders.length === 0 ? (
        <p className="tb-muted">No orders yet.</p>
      ) : (
        <ul className="tb-orders__list">
          {orders.map((order) => (
            <li key={order.id} className="tb-orders__row">
              <span>
                {actionLabel(order.package_id)} pack ·{" "}
                {formatTokens(mtToDecimal(order.tokens_mt + order.bonus_mt))} tokens
              </span>
              <span>{charged(order)}</span>
              <span className={`tb-status tb-status--${order.status}`}>
                {orderStatusLabel(order.status)}
              </span>
              <time dateTime={order.created_at}>{formatDate(order.created_at)}</time>
              <Documents order={order} />
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
