// A real Better Auth server for the interop tests: memory adapter, email and password,
// the jwt() and bearer() plugins, on 127.0.0.1:$PORT. JWT_ALG picks the signing algorithm;
// ROTATION_SECONDS, when set, rotates the signing key that often (old keys stay published);
// BEARER_PLUGIN=off leaves bearer() out, as a frontend that forgot it would.
// MCP_RESOURCE, when set, adds the mcp() plugin (@better-auth/mcp) with that resource, open
// dynamic client registration; MCP_TOKEN_SECONDS sets its access tokens' lifetime (a negative
// one issues them already expired).
import http from "node:http";
import { mcp } from "@better-auth/mcp";
import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { toNodeHandler } from "better-auth/node";
import { bearer, jwt } from "better-auth/plugins";

const port = Number(process.env.PORT);
const baseURL = `http://127.0.0.1:${port}`;
const alg = process.env.JWT_ALG || "EdDSA";
const rotation = Number(process.env.ROTATION_SECONDS) || undefined;

const mcpPlugins = process.env.MCP_RESOURCE
  ? [
      mcp({
        resource: process.env.MCP_RESOURCE,
        accessTokenExpiresIn: Number(process.env.MCP_TOKEN_SECONDS) || undefined,
        loginPage: "/sign-in",
        consentPage: "/consent",
        allowDynamicClientRegistration: true,
        allowUnauthenticatedClientRegistration: true,
      }),
    ]
  : [];
const tables = { user: [], session: [], account: [], verification: [], jwks: [] };
for (const plugin of mcpPlugins) {
  for (const [name, model] of Object.entries(plugin.schema ?? {})) {
    tables[model.modelName ?? name] = [];
  }
}

const auth = betterAuth({
  baseURL,
  secret: "better-auth-harness-secret-not-used-by-the-api",
  database: memoryAdapter(tables),
  emailAndPassword: { enabled: true },
  plugins: [
    jwt({ jwks: { keyPairConfig: { alg }, rotationInterval: rotation } }),
    ...(process.env.BEARER_PLUGIN === "off" ? [] : [bearer()]),
    ...mcpPlugins,
  ],
  telemetry: { enabled: false },
});

const server = http.createServer(toNodeHandler(auth));
server.listen(port, "127.0.0.1", () => console.log(`ready ${baseURL}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
