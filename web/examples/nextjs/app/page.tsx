import Link from "next/link";

export default function Home() {
  return (
    <section className="grid gap-3">
      <h1 className="text-2xl font-bold">Token billing in a Next.js app</h1>
      <p>
        Buy a token pack on the{" "}
        <Link href="/pricing" className="text-blue-700 underline">
          pricing page
        </Link>
        , then see it on your{" "}
        <Link href="/dashboard" className="text-blue-700 underline">
          dashboard
        </Link>
        .
      </p>
    </section>
  );
}
