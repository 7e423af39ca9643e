// What `python -m tests.interop.frontend.run` passes to the TypeScript side.
export interface Environment {
  /** The API's base, `http://127.0.0.1:PORT/api`. */
  apiUrl: string;
  /** The Better Auth harness the API checks JWTs against. */
  betterAuthUrl: string;
  /** An origin listed in the API's CORS_ORIGINS, and one that is not. */
  frontendOrigin: string;
  foreignOrigin: string;
  screenshots: string;
}

function variable(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through python -m tests.interop.frontend.run`);
  return value;
}

export function environment(): Environment {
  return {
    apiUrl: variable("API_URL"),
    betterAuthUrl: variable("BETTER_AUTH_URL"),
    frontendOrigin: process.env.FRONTEND_ORIGIN ?? "",
    foreignOrigin: process.env.FOREIGN_ORIGIN ?? "",
    screenshots: process.env.SCREENSHOTS ?? "screenshots",
  };
}
