// A user signed in with Better Auth the way the frontend signs one in: Better Auth's own client
// with the jwtClient() plugin, against the real harness server (tests/interop/better_auth/server.mjs).
// Outside a browser there is no cookie jar, so the session travels as a bearer token (the
// harness has the bearer() plugin), as Better Auth documents for such clients.
import { randomUUID } from "node:crypto";
import { createAuthClient } from "better-auth/client";
import { jwtClient } from "better-auth/client/plugins";

export interface SignedIn {
  userId: string;
  /** A fresh JWT from `authClient.token()`, as lib/api.ts asks for one before each request. */
  getToken: () => Promise<string>;
}

export async function signUp(betterAuthUrl: string, name = "Alice"): Promise<SignedIn> {
  let session = "";
  const authClient = createAuthClient({
    baseURL: betterAuthUrl,
    plugins: [jwtClient()],
    fetchOptions: {
      // Better Auth refuses state-changing calls without a trusted Origin; a browser sends one.
      headers: { Origin: betterAuthUrl },
      auth: { type: "Bearer", token: () => session },
    },
  });
  const { data, error } = await authClient.signUp.email(
    {
      email: `${randomUUID().slice(0, 12)}@example.com`,
      password: "correct-horse-battery-staple",
      name,
    },
    {
      onSuccess: (context) => {
        session = context.response.headers.get("set-auth-token") ?? "";
      },
    },
  );
  if (error || !data || !session) {
    throw new Error(`sign-up failed: ${JSON.stringify(error)}`);
  }
  return {
    userId: data.user.id,
    getToken: async () => {
      const token = await authClient.token();
      if (token.error || !token.data) {
        throw new Error(`no token: ${JSON.stringify(token.error)}`);
      }
      return token.data.token;
    },
  };
}
