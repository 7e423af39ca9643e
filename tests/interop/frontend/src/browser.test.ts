// The API in a real browser: Debian's Chromium, driven by playwright-core (no browser download).
// Swagger UI is used as a person would use it, and a page on another loopback port (the
// frontend's origin) calls the API through CORS, while a page on an origin the API does not
// list is refused by the browser. Run by `python -m tests.interop.frontend.run`.
import assert from "node:assert/strict";
import http from "node:http";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  type Browser,
  type BrowserContext,
  chromium,
  type Locator,
  type Page,
} from "playwright-core";
import { signUp } from "./auth";
import { environment } from "./environment";

const env = environment();

// Chromium as this machine runs it: no sandbox as root, and none of the background calls to
// Google's services, which a closed network refuses.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
];

/** A page on `origin`, standing in for the Next.js app served there. */
async function serveOrigin(origin: string): Promise<http.Server> {
  const { hostname, port } = new URL(origin);
  const server = http.createServer((_request, response) => {
    response.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    response.end(`<!doctype html><title>${origin}</title><h1>${origin}</h1><pre id="out"></pre>`);
  });
  await new Promise<void>((resolve) => server.listen(Number(port), hostname, resolve));
  return server;
}

function screenshot(name: string): string {
  return path.join(env.screenshots, `${name}.png`);
}

/** What a fetch from the page got back, or the error the browser gave instead. */
interface Fetched {
  status?: number;
  total?: string | null;
  link?: string | null;
  location?: string | null;
  etag?: string | null;
  replayed?: string | null;
  titles?: string[];
  error?: string;
}

/** `fetch` from inside the page, with the bearer token, as the frontend's code would call it. */
async function fetchFromPage(
  page: Page,
  url: string,
  token: string,
  body?: object,
  headers: Record<string, string> = {},
) {
  return page.evaluate(
    async ({ url, token, body, headers }): Promise<Fetched> => {
      try {
        const response = await fetch(url, {
          method: body ? "POST" : "GET",
          headers: {
            Authorization: `Bearer ${token}`,
            ...(body ? { "Content-Type": "application/json" } : {}),
            ...headers,
          },
          body: body ? JSON.stringify(body) : undefined,
        });
        const json: unknown = response.status === 304 ? [] : await response.json();
        const result: Fetched = {
          status: response.status,
          total: response.headers.get("X-Total-Count"),
          link: response.headers.get("Link"),
          location: response.headers.get("Location"),
          etag: response.headers.get("ETag"),
          replayed: response.headers.get("Idempotent-Replayed"),
          titles: Array.isArray(json)
            ? json.map((task: { title: string }) => task.title)
            : [(json as { title: string }).title],
        };
        document.querySelector("#out")!.textContent = JSON.stringify(result, null, 2);
        return result;
      } catch (error) {
        document.querySelector("#out")!.textContent = String(error);
        return { error: String(error) };
      }
    },
    { url, token, body, headers },
  );
}

describe("in Chromium", () => {
  let browser: Browser;
  let context: BrowserContext;
  let token: string;
  const servers: http.Server[] = [];

  before(async () => {
    const user = await signUp(env.betterAuthUrl);
    token = await user.getToken();
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      headless: true,
      args: CHROMIUM_ARGS,
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    servers.push(await serveOrigin(env.frontendOrigin), await serveOrigin(env.foreignOrigin));
  });

  after(async () => {
    await browser?.close();
    for (const server of servers) server.close();
  });

  test("Swagger UI: Authorize with a bearer token, Try it out on create and on list", async () => {
    const page = await context.newPage();
    await page.goto(`${env.apiUrl}/docs/`);
    await page.locator(".swagger-ui .info .title", { hasText: "Todo API" }).waitFor();

    await page.locator(".auth-wrapper button.authorize").click();
    const dialog = page.locator(".dialog-ux .modal-ux");
    // The bearer scheme's form (the stream's ticket scheme has one too).
    const bearerForm = dialog.locator("form", { hasText: "bearerAuth" });
    await bearerForm.locator('input[aria-label="auth-bearer-value"]').fill(token);
    await bearerForm.locator("button.authorize").click();
    // Swagger UI swaps the Authorize button for Logout once it holds a credential.
    await bearerForm.getByRole("button", { name: "Logout" }).waitFor();
    await dialog.screenshot({ path: screenshot("swagger-authorized") });
    await bearerForm.locator("button.btn-done").click();
    await dialog.waitFor({ state: "detached" });

    const operation = (method: string, route: string): Locator =>
      page.locator(`.opblock.opblock-${method}`, {
        has: page.locator(`.opblock-summary-path[data-path="${route}"]`),
      });
    const tryItOut = async (block: Locator): Promise<Locator> => {
      await block.locator(".opblock-summary").click();
      await block.locator("button.try-out__btn").click();
      return block;
    };
    /** Execute, and screenshot the operation from its summary down to the answer it got. */
    const execute = async (block: Locator, name: string) => {
      await block.locator("button.execute").click();
      const answer = block.locator(".live-responses-table .response").first();
      await answer.locator(".response-col_status").waitFor();
      // At the top of the page, viewport coordinates are page coordinates.
      await page.evaluate(() => window.scrollTo(0, 0));
      const top = await block.boundingBox();
      const bottom = await answer.boundingBox();
      if (top && bottom) {
        const height = bottom.y + bottom.height - top.y;
        const clip = { x: top.x, y: top.y, width: top.width, height };
        await page.screenshot({ path: screenshot(name), fullPage: true, clip });
      }
      return {
        status: (await answer.locator(".response-col_status").innerText()).trim(),
        body: await answer.locator(".response-col_description").innerText(),
      };
    };

    const create = await tryItOut(operation("post", "/tasks"));
    await create
      .locator("textarea.body-param__text")
      .fill(JSON.stringify({ title: "Made in Swagger UI", tags: ["docs"] }));
    const created = await execute(create, "swagger-create-201");
    assert.equal(created.status, "201", created.body);
    assert.match(created.body, /"title": "Made in Swagger UI"/);
    assert.match(created.body, /location: \/api\/tasks\/\d+/i);

    const list = await tryItOut(operation("get", "/tasks"));
    const listed = await execute(list, "swagger-list-200");
    assert.equal(listed.status, "200", listed.body);
    assert.match(listed.body, /"title": "Made in Swagger UI"/);
    assert.match(listed.body, /x-total-count: 1/i);
    await page.close();
  });

  test("the frontend's origin sends and reads the paging, ETag and idempotency headers", async () => {
    const page = await context.newPage();
    await page.goto(env.frontendOrigin);
    const titles = ["cors a", "cors b", "cors c"];
    for (const title of titles) {
      const created = await fetchFromPage(page, `${env.apiUrl}/tasks`, token, { title });
      assert.equal(created.status, 201, created.error);
      assert.match(created.location ?? "", /^\/api\/tasks\/\d+$/);
    }

    const query = "q=cors&sort=title&order=asc&limit=2";
    const first = await fetchFromPage(page, `${env.apiUrl}/tasks?${query}`, token);
    assert.equal(first.status, 200, first.error);
    assert.equal(first.total, "3");
    assert.deepEqual(first.titles, ["cors a", "cors b"]);
    const next = /<([^>]+)>;\s*rel="next"/.exec(first.link ?? "")?.[1];
    assert.ok(next, `a Link to the next page, not ${first.link}`);

    const second = await fetchFromPage(page, new URL(next, env.apiUrl).href, token);
    await page.screenshot({ path: screenshot("cors-allowed-origin") });
    assert.equal(second.status, 200, second.error);
    assert.equal(second.total, "3");
    assert.deepEqual(second.titles, ["cors c"]);
    assert.equal(second.link, null, "the last page links no further");

    // The headers of safe concurrent clients cross origins too (sent and read).
    const key = { "Idempotency-Key": "cors-once" };
    const once = await fetchFromPage(page, `${env.apiUrl}/tasks`, token, { title: "cors d" }, key);
    const again = await fetchFromPage(page, `${env.apiUrl}/tasks`, token, { title: "cors d" }, key);
    assert.equal(once.status, 201, once.error);
    assert.equal(again.status, 201, again.error);
    assert.equal(again.replayed, "true");
    assert.equal(again.location, once.location);
    assert.match(once.etag ?? "", /^"[^"]+"$/);
    const taskUrl = new URL(once.location ?? "", env.apiUrl).href;
    const unchanged = { "If-None-Match": once.etag ?? "" };
    const cached = await fetchFromPage(page, taskUrl, token, undefined, unchanged);
    assert.equal(cached.status, 304, cached.error);
    await page.close();
  });

  test("an origin the API does not list is blocked by the browser", async () => {
    const page = await context.newPage();
    const console: string[] = [];
    page.on("console", (message) => console.push(message.text()));
    await page.goto(env.foreignOrigin);

    const read = await fetchFromPage(page, `${env.apiUrl}/tasks`, token);
    const write = await fetchFromPage(page, `${env.apiUrl}/tasks`, token, { title: "from afar" });
    await page.screenshot({ path: screenshot("cors-foreign-origin") });
    assert.equal(read.status, undefined, "the page must not see the answer");
    assert.match(read.error ?? "", /TypeError: Failed to fetch/);
    assert.match(write.error ?? "", /TypeError: Failed to fetch/);
    assert.ok(
      console.some((line) => line.includes("blocked by CORS policy")),
      `Chromium reports a CORS refusal: ${console.join("\n")}`,
    );

    // The preflight was refused, so the write never reached the API.
    const check = await context.newPage();
    await check.goto(env.frontendOrigin);
    const afar = await fetchFromPage(check, `${env.apiUrl}/tasks?q=afar`, token);
    assert.equal(afar.total, "0");
    await page.close();
    await check.close();
  });

  /** In the page: a native EventSource on `url`, its events kept in `window.received`. */
  async function openEventSource(page: Page, url: string): Promise<boolean> {
    return page.evaluate(
      (url) =>
        new Promise<boolean>((resolve) => {
          const w = window as unknown as { received: { data: string; at: number }[] };
          w.received = [];
          const source = new EventSource(url);
          source.addEventListener("change", (event) => {
            w.received.push({ data: (event as MessageEvent).data, at: Date.now() });
            document.querySelector("#out")!.textContent = JSON.stringify(w.received, null, 2);
          });
          source.onopen = () => resolve(true);
          source.onerror = () => {
            source.close();
            resolve(false);
          };
        }),
      url,
    );
  }

  /** The changes-feed cursor after every change so far: a stream from it gets only news. */
  async function latestCursor(): Promise<string> {
    let cursor = "";
    for (;;) {
      const query = cursor ? `?limit=500&cursor=${cursor}` : "?limit=500";
      const response = await fetch(`${env.apiUrl}/tasks/changes${query}`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      const page = (await response.json()) as { cursor: string; has_more: boolean };
      cursor = page.cursor;
      if (!page.has_more) return cursor;
    }
  }

  async function ticketFor(headers: Record<string, string> = {}): Promise<string> {
    const response = await fetch(`${env.apiUrl}/tasks/events/tickets`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, ...headers },
    });
    assert.equal(response.status, 201);
    return ((await response.json()) as { ticket: string }).ticket;
  }

  test("a native EventSource with a ticket gets another page's change within a second", async () => {
    const watching = await context.newPage();
    await watching.goto(env.frontendOrigin);
    // The frontend asks for the ticket from the page, as it would (CORS, with Authorization).
    const ticket = await watching.evaluate(
      async ({ url, token }) => {
        const response = await fetch(url, {
          method: "POST",
          headers: { Authorization: `Bearer ${token}` },
        });
        return ((await response.json()) as { ticket: string }).ticket;
      },
      { url: `${env.apiUrl}/tasks/events/tickets`, token },
    );
    const cursor = await latestCursor();
    const opened = await openEventSource(
      watching,
      `${env.apiUrl}/tasks/events?ticket=${encodeURIComponent(ticket)}&cursor=${cursor}`,
    );
    assert.ok(opened, "the EventSource opened");

    const writing = await context.newPage();
    await writing.goto(env.frontendOrigin);
    const sent = Date.now();
    const created = await fetchFromPage(writing, `${env.apiUrl}/tasks`, token, {
      title: "seen live",
    });
    assert.equal(created.status, 201, created.error);
    await watching.waitForFunction(
      () => (window as unknown as { received: unknown[] }).received.length > 0,
      undefined,
      { timeout: 5000 },
    );
    const received = await watching.evaluate(
      () => (window as unknown as { received: { data: string; at: number }[] }).received,
    );
    await watching.screenshot({ path: screenshot("event-source-change") });
    const change = JSON.parse(received[0]!.data) as { op: string; task: { title: string } };
    assert.equal(change.op, "upsert");
    assert.equal(change.task.title, "seen live");
    const delay = received[0]!.at - sent;
    assert.ok(delay < 1000, `delivered ${delay} ms after the write was sent`);
    await watching.close();
    await writing.close();
  });

  test("an EventSource from an origin the API does not list is blocked", async () => {
    const page = await context.newPage();
    const console: string[] = [];
    page.on("console", (message) => console.push(message.text()));
    await page.goto(env.foreignOrigin);
    // A good ticket (asked for outside the browser): only CORS stands in the way.
    const ticket = await ticketFor();
    const opened = await openEventSource(
      page,
      `${env.apiUrl}/tasks/events?ticket=${encodeURIComponent(ticket)}`,
    );
    assert.equal(opened, false, "the browser refused the stream");
    assert.ok(
      console.some((line) => line.includes("blocked by CORS policy")),
      `Chromium reports a CORS refusal: ${console.join("\n")}`,
    );
    await page.close();
  });
});
