// The API client as a Next.js app keeps it (lib/api.ts): typed only by what openapi-typescript
// generates from the served contract (../generated/api.d.ts), so a change to the contract that
// this code no longer fits fails `tsc --noEmit`. One function per operation.
import createClient from "openapi-fetch";
import type { components, paths } from "../generated/api";

export type Task = components["schemas"]["Task"];
export type Problem = components["schemas"]["Problem"];
export type NewTask = paths["/tasks"]["post"]["requestBody"]["content"]["application/json"];
export type TaskChanges =
  paths["/tasks/{task_id}"]["patch"]["requestBody"]["content"]["application/json"];
export type ListQuery = NonNullable<paths["/tasks"]["get"]["parameters"]["query"]>;
export type ChangesPage = components["schemas"]["ChangesPage"];
export type Change = components["schemas"]["Change"];
export type PreconditionProblem = components["schemas"]["PreconditionProblem"];
export type StreamTicket = components["schemas"]["StreamTicket"];
export type TagCount = components["schemas"]["TagCount"];
export type ChatRequest = paths["/chat"]["post"]["requestBody"]["content"]["application/json"];
export type ChatAnswer = components["schemas"]["ChatAnswer"];
export type Conversation = components["schemas"]["Conversation"];
export type ChatMessage = components["schemas"]["Message"];

/** An open subscription to the live updates; `close()` ends it for good. */
export interface Subscription {
  close(): void;
  /** The id of the last change received: where a later subscription resumes. */
  readonly lastEventId: string | null;
}

export interface SubscribeOptions {
  /** Resume after this change (a `lastEventId`, or a changes-feed cursor). */
  cursor?: string;
  /** The cursor is past retention: drop the local copy; changes start over from the first. */
  onReset?: (problem: Problem) => void;
  /** A connection failed or ended early; the subscription reconnects by itself. */
  onError?: (error: unknown) => void;
  /** A connection is open: changes from now on arrive as they commit. */
  onOpen?: () => void;
  /** A task's `remind_at` has come: show it. Once per occurrence; not replayed on resume. */
  onReminder?: (task: Task) => void;
}

/** One page of the user's chatbot conversations, newest first. */
export interface ConversationPage {
  conversations: Conversation[];
  total: number;
  /** The cursor of the next page, if there is one. */
  next: string | null;
}

/** One page of a conversation's messages, oldest first. */
export interface MessagePage {
  messages: ChatMessage[];
  total: number;
  next: string | null;
}

/** One page of the user's tags, most used first. */
export interface TagPage {
  tags: TagCount[];
  total: number;
  /** The cursor of the next page, if there is one. */
  next: string | null;
}

interface StreamEvent {
  event: string;
  id: string | null;
  data: string;
  retry: number | null;
}

/** The events of a text/event-stream body, parsed as the HTML standard says. */
async function* streamEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<StreamEvent> {
  const decoder = new TextDecoder();
  let buffer = "";
  let event: StreamEvent = { event: "message", id: null, data: "", retry: null };
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop() ?? "";
    for (const line of lines) {
      if (line === "") {
        if (event.data !== "" || event.retry !== null) yield event;
        event = { event: "message", id: null, data: "", retry: null };
        continue;
      }
      const colon = line.indexOf(":");
      if (colon === 0) continue; // a comment: the heartbeat
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event.event = value;
      else if (field === "id") event.id = value;
      else if (field === "data") event.data = event.data ? `${event.data}\n${value}` : value;
      else if (field === "retry" && /^\d+$/.test(value)) event.retry = Number(value);
    }
  }
}

function pause(milliseconds: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, milliseconds);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A problem+json answer (RFC 9457), thrown so that callers deal with failures in one place. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem | undefined;
  readonly response: Response;

  constructor(response: Response, problem: Problem | undefined) {
    super(`${response.status} ${problem?.title ?? response.statusText}: ${problem?.detail ?? ""}`);
    this.status = response.status;
    this.problem = problem;
    this.response = response;
  }
}

/** One page of a list: the tasks, `X-Total-Count`, and the query of the `Link: rel="next"` page. */
export interface Page {
  tasks: Task[];
  total: number;
  next: ListQuery | null;
}

export interface Created {
  task: Task;
  location: string | null;
  etag: string | null;
  /** The answer is the stored one of an earlier create with the same Idempotency-Key. */
  replayed: boolean;
}

/** A task with the `ETag` it was answered with: what a conditional save sends back. */
export interface Versioned {
  task: Task;
  etag: string;
}

function versioned(answer: Answer<Task>): Versioned {
  return { task: ok(answer), etag: answer.response.headers.get("ETag") ?? "" };
}

function created(answer: Answer<Task>): Created {
  const headers = answer.response.headers;
  return {
    task: ok(answer),
    location: headers.get("Location"),
    etag: headers.get("ETag"),
    replayed: headers.get("Idempotent-Replayed") === "true",
  };
}

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

function ok<T>({ data, error, response }: Answer<T>): T {
  if (!response.ok) throw new ApiError(response, error as Problem | undefined);
  return data as T;
}

/** The target of the `rel="next"` link of an RFC 8288 `Link` header, if there is one. */
export function nextLink(header: string | null): string | null {
  for (const link of header?.split(/,(?=\s*<)/) ?? []) {
    const match = /^\s*<([^>]*)>(.*)$/s.exec(link);
    const rel = match?.[2]?.match(/;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i);
    const relations = (rel?.[1] ?? rel?.[2] ?? "").toLowerCase().split(/\s+/);
    if (match?.[1] !== undefined && relations.includes("next")) return match[1];
  }
  return null;
}

/** The cursor of the `Link: rel="next"` page, if there is one. */
function cursorOf(response: Response): string | null {
  const link = nextLink(response.headers.get("Link"));
  return link ? new URL(link, response.url).searchParams.get("cursor") : null;
}

function toPage(tasks: Task[], query: ListQuery, response: Response): Page {
  const link = nextLink(response.headers.get("Link"));
  // The link keeps the filters; the frontend only needs its cursor to ask for the next page.
  const cursor = link ? new URL(link, response.url).searchParams.get("cursor") : null;
  return {
    tasks,
    total: Number(response.headers.get("X-Total-Count")),
    next: cursor ? { ...query, cursor } : null,
  };
}

/**
 * The API for one signed-in user. `getToken` is called for every request; in a Next.js app it is
 * `async () => (await authClient.token()).data!.token` (Better Auth's jwtClient plugin).
 */
export function createTodoApi(baseUrl: string, getToken: () => Promise<string>) {
  const client = createClient<paths>({ baseUrl });
  client.use({
    async onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${await getToken()}`);
      return request;
    },
  });

  const health = async () => ok(await client.GET("/health"));
  const ready = async () => ok(await client.GET("/health/ready"));

  const listTasks = async (query: ListQuery = {}): Promise<Page> => {
    const answer = await client.GET("/tasks", { params: { query } });
    return toPage(ok(answer), query, answer.response);
  };

  /** With `idempotencyKey`, a retry of the same create (same key, same body) makes no task. */
  const createTask = async (task: NewTask, idempotencyKey?: string): Promise<Created> => {
    const header = idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {};
    return created(await client.POST("/tasks", { params: { header }, body: task }));
  };

  const getTask = async (taskId: number): Promise<Task> =>
    ok(await client.GET("/tasks/{task_id}", { params: { path: { task_id: taskId } } }));

  const updateTask = async (taskId: number, changes: TaskChanges): Promise<Task> =>
    ok(
      await client.PATCH("/tasks/{task_id}", {
        params: { path: { task_id: taskId } },
        body: changes,
      }),
    );

  const putTask = async (taskId: number, changes: TaskChanges): Promise<Task> =>
    ok(
      await client.PUT("/tasks/{task_id}", { params: { path: { task_id: taskId } }, body: changes }),
    );

  const deleteTask = async (taskId: number): Promise<void> => {
    ok(await client.DELETE("/tasks/{task_id}", { params: { path: { task_id: taskId } } }));
  };

  const setCompleted = async (taskId: number, completed: boolean): Promise<Task> =>
    ok(
      await client.PATCH("/tasks/{task_id}/complete", {
        params: { path: { task_id: taskId } },
        body: { completed },
      }),
    );

  /** POST, with no body: toggles (for clients that cannot send PATCH). */
  const toggleCompleted = async (taskId: number): Promise<Task> =>
    ok(
      await client.POST("/tasks/{task_id}/complete", { params: { path: { task_id: taskId } } }),
    );

  // The same operations addressed by user id, as a page that shows one user's tasks would.
  const listUserTasks = async (userId: string, query: ListQuery = {}): Promise<Page> => {
    const answer = await client.GET("/{user_id}/tasks", {
      params: { path: { user_id: userId }, query },
    });
    return toPage(ok(answer), query, answer.response);
  };

  const createUserTask = async (
    userId: string,
    task: NewTask,
    idempotencyKey?: string,
  ): Promise<Created> => {
    const header = idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {};
    return created(
      await client.POST("/{user_id}/tasks", {
        params: { path: { user_id: userId }, header },
        body: task,
      }),
    );
  };

  /** The task and its ETag, or null (304) while it still has the version `etag` names. */
  const getTaskIfChanged = async (taskId: number, etag?: string): Promise<Versioned | null> => {
    const header = etag ? { "If-None-Match": etag } : {};
    const answer = await client.GET("/tasks/{task_id}", {
      params: { path: { task_id: taskId }, header },
    });
    return answer.response.status === 304 ? null : versioned(answer);
  };

  /** A save that applies only to the version `etag` names; else ApiError 412 (`problem.task`). */
  const saveTask = async (taskId: number, changes: TaskChanges, etag: string): Promise<Versioned> =>
    versioned(
      await client.PATCH("/tasks/{task_id}", {
        params: { path: { task_id: taskId }, header: { "If-Match": etag } },
        body: changes,
      }),
    );

  const completeTaskIf = async (taskId: number, completed: boolean, etag: string) =>
    versioned(
      await client.PATCH("/tasks/{task_id}/complete", {
        params: { path: { task_id: taskId }, header: { "If-Match": etag } },
        body: { completed },
      }),
    );

  const deleteTaskIf = async (taskId: number, etag: string): Promise<void> => {
    ok(
      await client.DELETE("/tasks/{task_id}", {
        params: { path: { task_id: taskId }, header: { "If-Match": etag } },
      }),
    );
  };

  /** Undo of a delete, within the server's retention period. */
  const restoreTask = async (taskId: number): Promise<Versioned> =>
    versioned(
      await client.POST("/tasks/{task_id}/restore", { params: { path: { task_id: taskId } } }),
    );

  const restoreUserTask = async (userId: string, taskId: number): Promise<Versioned> =>
    versioned(
      await client.POST("/{user_id}/tasks/{task_id}/restore", {
        params: { path: { user_id: userId, task_id: taskId } },
      }),
    );

  /** One page of the changes feed after `cursor` (from the beginning without one). */
  const changes = async (cursor?: string, limit?: number): Promise<ChangesPage> =>
    ok(await client.GET("/tasks/changes", { params: { query: { cursor, limit } } }));

  const userChanges = async (userId: string, cursor?: string): Promise<ChangesPage> =>
    ok(
      await client.GET("/{user_id}/tasks/changes", {
        params: { path: { user_id: userId }, query: { cursor } },
      }),
    );

  /**
   * Incremental sync: applies every change after `cursor` to `local` and returns the cursor to
   * keep. A 410 (deletions purged since `cursor`) starts over from an empty copy.
   */
  const sync = async (
    local: Map<number, Task>,
    cursor: string | null,
    limit = 100,
  ): Promise<string> => {
    for (;;) {
      let page: ChangesPage;
      try {
        page = await changes(cursor ?? undefined, limit);
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 410)) throw error;
        local.clear();
        cursor = null;
        continue;
      }
      for (const change of page.changes) {
        if (change.op === "upsert") local.set(change.task.id, change.task);
        else local.delete(change.id);
      }
      cursor = page.cursor;
      if (!page.has_more) return cursor;
    }
  };

  const getUserTask = async (userId: string, taskId: number): Promise<Task> =>
    ok(
      await client.GET("/{user_id}/tasks/{task_id}", {
        params: { path: { user_id: userId, task_id: taskId } },
      }),
    );

  const updateUserTask = async (
    userId: string,
    taskId: number,
    changes: TaskChanges,
  ): Promise<Task> =>
    ok(
      await client.PATCH("/{user_id}/tasks/{task_id}", {
        params: { path: { user_id: userId, task_id: taskId } },
        body: changes,
      }),
    );

  const putUserTask = async (userId: string, taskId: number, changes: TaskChanges): Promise<Task> =>
    ok(
      await client.PUT("/{user_id}/tasks/{task_id}", {
        params: { path: { user_id: userId, task_id: taskId } },
        body: changes,
      }),
    );

  const deleteUserTask = async (userId: string, taskId: number): Promise<void> => {
    ok(
      await client.DELETE("/{user_id}/tasks/{task_id}", {
        params: { path: { user_id: userId, task_id: taskId } },
      }),
    );
  };

  const setUserTaskCompleted = async (
    userId: string,
    taskId: number,
    completed: boolean,
  ): Promise<Task> =>
    ok(
      await client.PATCH("/{user_id}/tasks/{task_id}/complete", {
        params: { path: { user_id: userId, task_id: taskId } },
        body: { completed },
      }),
    );

  const toggleUserTaskCompleted = async (userId: string, taskId: number): Promise<Task> =>
    ok(
      await client.POST("/{user_id}/tasks/{task_id}/complete", {
        params: { path: { user_id: userId, task_id: taskId } },
      }),
    );

  /** Every page of a list, following `Link: rel="next"` until there is none. */
  async function* pages(query: ListQuery = {}): AsyncGenerator<Page> {
    let next: ListQuery | null = query;
    while (next) {
      const page: Page = await listTasks(next);
      yield page;
      next = page.next;
    }
  }

  /**
   * Live updates: `onChange` gets every change of the user's tasks as it commits, in order, with
   * the id to resume after. fetch-based, so the bearer token travels in a header (a fresh one
   * on every connection); when the stream ends (the token expired, the server restarted, the
   * network dropped) it reconnects with `Last-Event-ID`, and nothing is lost or repeated.
   */
  const subscribe = (
    onChange: (change: Change, id: string) => void,
    options: SubscribeOptions = {},
  ): Subscription => {
    const controller = new AbortController();
    let lastEventId = options.cursor ?? null;
    let retry = 2000;
    const run = async () => {
      while (!controller.signal.aborted) {
        try {
          const headers: Record<string, string> = {
            Authorization: `Bearer ${await getToken()}`,
            Accept: "text/event-stream",
          };
          if (lastEventId) headers["Last-Event-ID"] = lastEventId;
          const response = await fetch(`${baseUrl}/tasks/events`, {
            headers,
            signal: controller.signal,
          });
          if (!response.ok || !response.body) {
            const problem = (await response.json().catch(() => undefined)) as Problem | undefined;
            const error = new ApiError(response, problem);
            // A cursor that is not the feed's, or a refusal that waiting will not change.
            if (![401, 429, 503].includes(response.status)) {
              options.onError?.(error);
              return;
            }
            throw error;
          }
          options.onOpen?.();
          for await (const event of streamEvents(response.body)) {
            if (event.retry !== null) retry = event.retry;
            if (event.event === "change" && event.id) {
              lastEventId = event.id;
              onChange(JSON.parse(event.data) as Change, event.id);
            } else if (event.event === "reminder") {
              options.onReminder?.(JSON.parse(event.data) as Task);
            } else if (event.event === "reset") {
              lastEventId = null;
              options.onReset?.(JSON.parse(event.data) as Problem);
            }
          }
        } catch (error) {
          if (controller.signal.aborted) return;
          options.onError?.(error);
        }
        await pause(retry, controller.signal);
      }
    };
    void run();
    return {
      close: () => controller.abort(),
      get lastEventId() {
        return lastEventId;
      },
    };
  };

  /** The user's tags with their pending and completed counts, most used first. */
  const listTags = async (limit?: number, cursor?: string): Promise<TagPage> => {
    const answer = await client.GET("/tags", { params: { query: { limit, cursor } } });
    const link = nextLink(answer.response.headers.get("Link"));
    return {
      tags: ok(answer),
      total: Number(answer.response.headers.get("X-Total-Count")),
      next: link ? new URL(link, answer.response.url).searchParams.get("cursor") : null,
    };
  };

  /** `to` in place of `tag` on every task of the user's, in one write; the new tag's counts. */
  const renameTag = async (tag: string, to: string): Promise<TagCount> =>
    ok(await client.POST("/tags/{tag}/rename", { params: { path: { tag } }, body: { to } }));

  /**
   * One turn with the chatbot: its reply and the tool calls it made. Without `conversationId`,
   * a new conversation begins; its id is in the answer, to go on with it.
   */
  const chat = async (message: string, conversationId?: string): Promise<ChatAnswer> => {
    const body: ChatRequest = conversationId
      ? { conversation_id: conversationId, message }
      : { message };
    const answer = ok(await client.POST("/chat", { body }));
    // The contract's 200 is JSON or, asked for with `Accept: text/event-stream`, a stream.
    if (typeof answer === "string") throw new Error("a stream answered a request for JSON");
    return answer;
  };

  const listConversations = async (limit?: number, cursor?: string): Promise<ConversationPage> => {
    const answer = await client.GET("/conversations", { params: { query: { limit, cursor } } });
    return {
      conversations: ok(answer),
      total: Number(answer.response.headers.get("X-Total-Count")),
      next: cursorOf(answer.response),
    };
  };

  const conversationMessages = async (
    conversationId: string,
    limit?: number,
    cursor?: string,
  ): Promise<MessagePage> => {
    const answer = await client.GET("/conversations/{conversation_id}/messages", {
      params: { path: { conversation_id: conversationId }, query: { limit, cursor } },
    });
    return {
      messages: ok(answer),
      total: Number(answer.response.headers.get("X-Total-Count")),
      next: cursorOf(answer.response),
    };
  };

  const deleteConversation = async (conversationId: string): Promise<void> => {
    ok(
      await client.DELETE("/conversations/{conversation_id}", {
        params: { path: { conversation_id: conversationId } },
      }),
    );
  };

  /** The tasks whose reminder is due and not yet delivered on a stream (for polling clients). */
  const dueReminders = async (): Promise<Page> => listTasks({ reminder: "due" });

  /** A single-use ticket for a browser's native EventSource (`eventSourceUrl`). */
  const streamTicket = async (): Promise<StreamTicket> =>
    ok(await client.POST("/tasks/events/tickets"));

  /** The URL a native `new EventSource(url)` opens with a ticket (it cannot send headers). */
  const eventSourceUrl = (ticket: StreamTicket, cursor?: string): string => {
    const url = new URL(`${baseUrl}/tasks/events`);
    url.searchParams.set("ticket", ticket.ticket);
    if (cursor) url.searchParams.set("cursor", cursor);
    return url.href;
  };

  return {
    health,
    ready,
    subscribe,
    streamTicket,
    eventSourceUrl,
    listTasks,
    pages,
    listTags,
    renameTag,
    dueReminders,
    chat,
    listConversations,
    conversationMessages,
    deleteConversation,
    createTask,
    getTask,
    getTaskIfChanged,
    saveTask,
    completeTaskIf,
    deleteTaskIf,
    restoreTask,
    restoreUserTask,
    changes,
    userChanges,
    sync,
    updateTask,
    putTask,
    deleteTask,
    setCompleted,
    toggleCompleted,
    listUserTasks,
    createUserTask,
    getUserTask,
    updateUserTask,
    putUserTask,
    deleteUserTask,
    setUserTaskCompleted,
    toggleUserTaskCompleted,
  };
}

export type TodoApi = ReturnType<typeof createTodoApi>;
