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

/** The customer's recent token pack orders and their status. */
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
              <span>{formatPrice(order.price_cents, order.currency)}</span>
              <span className={`tb-status tb-status--${order.status}`}>
                {orderStatusLabel(order.status)}
              </span>
              <time dateTime={order.created_at}>{formatDate(order.created_at)}</time>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
