import Link from "next/link";

export default function Home() {
  return (
    <section>
      <h1>Token billing in a Next.js app</h1>
      <p>
        Buy a token pack on the <Link href="/pricing">pricing page</Link>, then see it on your{" "}
        <Link href="/dashboard">dashboard</Link>.
      </p>
    </section>
  );
}
