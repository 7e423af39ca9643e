// A real Better Auth server for the interop tests: memory adapter, email and password,
// the jwt() and bearer() plugins, on 127.0.0.1:$PORT. JWT_ALG picks the signing algorithm;
// ROTATION_SECONDS, when set, rotates the signing key that often (old keys stay published);
// BEARER_PLUGIN=off leaves bearer() out, as a frontend that forgot it would.
import http from "node:http";
import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { toNodeHandler } from "better-auth/node";
import { bearer, jwt } from "better-auth/plugins";

const port = Number(process.env.PORT);
const baseURL = `http://127.0.0.1:${port}`;
const alg = process.env.JWT_ALG || "EdDSA";
const rotation = Number(process.env.ROTATION_SECONDS) || undefined;

const auth = betterAuth({
  baseURL,
  secret: "better-auth-harness-secret-not-used-by-the-api",
  database: memoryAdapter({ user: [], session: [], account: [], verification: [], jwks: [] }),
  emailAndPassword: { enabled: true },
  plugins: [
    jwt({ jwks: { keyPairConfig: { alg }, rotationInterval: rotation } }),
    ...(process.env.BEARER_PLUGIN === "off" ? [] : [bearer()]),
  ],
  telemetry: { enabled: false },
});

const server = http.createServer(toNodeHandler(auth));
server.listen(port, "127.0.0.1", () => console.log(`ready ${baseURL}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
