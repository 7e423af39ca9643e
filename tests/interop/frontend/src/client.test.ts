// lib/api.ts against the live server, signed in through the live Better Auth harness: every
// operation, as the frontend calls it, and what it gets back. Run by `python -m tests.interop.frontend.run`.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import {
  ApiError,
  type Change,
  createTodoApi,
  nextLink,
  type Page,
  type PreconditionProblem,
  type TagCount,
  type Task,
  type TodoApi,
} from "./api";
import { signUp } from "./auth";
import { environment } from "./environment";

const { apiUrl, betterAuthUrl } = environment();

const sleep = (milliseconds: number) => new Promise((resolve) => setTimeout(resolve, milliseconds));

async function refused(call: Promise<unknown>, status: number): Promise<ApiError> {
  let caught: unknown;
  await assert.rejects(call, (error: unknown) => {
    caught = error;
    return error instanceof ApiError && error.status === status;
  });
  const error = caught as ApiError;
  assert.equal(error.response.headers.get("Content-Type"), "application/problem+json");
  assert.equal(error.problem?.status, status);
  return error;
}

describe("the typed client against the live API", () => {
  let api: TodoApi;
  let userId: string;

  before(async () => {
    const user = await signUp(betterAuthUrl);
    userId = user.userId;
    api = createTodoApi(apiUrl, user.getToken);
  });

  test("health and readiness", async () => {
    assert.deepEqual(await api.health(), { status: "ok" });
    assert.deepEqual(await api.ready(), { status: "ok" });
  });

  test("one task through create, get, update, put, complete, toggle and delete", async () => {
    const { task, location } = await api.createTask({
      title: "  Buy milk  ",
      tags: ["home"],
      due_date: "2026-12-01T18:00:00+01:00",
    });
    assert.equal(task.title, "Buy milk");
    assert.equal(task.user_id, userId, "the task belongs to the Better Auth user");
    assert.equal(task.description, null);
    assert.equal(task.completed, false);
    assert.equal(task.priority, "medium");
    assert.deepEqual(task.tags, ["home"]);
    assert.equal(Date.parse(task.due_date ?? ""), Date.parse("2026-12-01T17:00:00Z"));
    assert.equal(task.completed_at, null);
    assert.equal(new URL(location ?? "", apiUrl).pathname, `/api/tasks/${task.id}`);

    assert.deepEqual(await api.getTask(task.id), task);

    const patched = await api.updateTask(task.id, { priority: "high", description: "2 litres" });
    assert.equal(patched.priority, "high");
    assert.equal(patched.description, "2 litres");
    assert.equal(patched.title, "Buy milk", "fields not sent stay as they were");
    assert.ok(Date.parse(patched.updated_at) >= Date.parse(task.updated_at));

    // A frontend may send back the whole task it read: the server-set fields are ignored.
    const put = await api.putTask(task.id, { ...patched, description: null });
    assert.equal(put.description, null);
    assert.equal(put.priority, "high");
    assert.equal(put.created_at, task.created_at);

    const done = await api.setCompleted(task.id, true);
    assert.equal(done.completed, true);
    assert.ok(done.completed_at !== null && !Number.isNaN(Date.parse(done.completed_at)));
    assert.equal((await api.setCompleted(task.id, true)).completed, true, "setting is idempotent");

    const toggled = await api.toggleCompleted(task.id);
    assert.equal(toggled.completed, false);
    assert.equal(toggled.completed_at, null);

    await api.deleteTask(task.id);
    await refused(api.getTask(task.id), 404);
    await refused(api.deleteTask(task.id), 404);
  });

  test("a refused request is a problem the client can read", async () => {
    const error = await refused(api.createTask({ title: "   " }), 422);
    assert.ok(
      error.problem?.errors?.some((field) => field.pointer === "#/title"),
      JSON.stringify(error.problem),
    );
  });

  test("the list reads X-Total-Count and follows Link pages to the end", async () => {
    const titles = ["a", "b", "c", "d", "e", "f", "g"].map((letter) => `paged ${letter}`);
    for (const title of [...titles].reverse()) {
      await api.createTask({ title, tags: ["paged"] });
    }
    const query = { tag: "paged", sort: "title", order: "asc", limit: 3 } as const;

    const first = await api.listTasks(query);
    assert.equal(first.total, 7);
    assert.equal(first.tasks.length, 3);
    assert.ok(first.next?.cursor, "a next page is linked");

    const seen: Page[] = [];
    for await (const page of api.pages(query)) seen.push(page);
    assert.deepEqual(
      seen.map((page) => page.tasks.length),
      [3, 3, 1],
    );
    assert.deepEqual(
      seen.map((page) => page.total),
      [7, 7, 7],
    );
    assert.equal(seen.at(-1)?.next, null, "the last page links no further");
    assert.deepEqual(
      seen.flatMap((page) => page.tasks.map((task) => task.title)),
      titles,
    );

    const last = seen.at(-1)?.tasks[0];
    assert.ok(last);
    await api.setCompleted(last.id, true);
    const completed = await api.listTasks({ tag: "paged", status: "completed" });
    assert.equal(completed.total, 1);
    assert.deepEqual(
      completed.tasks.map((task) => task.id),
      [last.id],
    );
    assert.equal(completed.next, null);
    assert.equal((await api.listTasks({ q: "PAGED G" })).total, 1, "q is case-insensitive");
  });

  test("the /{user_id}/tasks family, for the token's own user", async () => {
    const { task, location } = await api.createUserTask(userId, { title: "by user id" });
    assert.equal(task.user_id, userId);
    assert.equal(new URL(location ?? "", apiUrl).pathname, `/api/${userId}/tasks/${task.id}`);
    assert.deepEqual(await api.getUserTask(userId, task.id), task);
    assert.equal((await api.updateUserTask(userId, task.id, { priority: "low" })).priority, "low");
    const put = await api.putUserTask(userId, task.id, { tags: ["x", "y"] });
    assert.deepEqual(put.tags, ["x", "y"]);
    assert.equal(put.priority, "low");
    assert.equal((await api.setUserTaskCompleted(userId, task.id, true)).completed, true);
    assert.equal((await api.toggleUserTaskCompleted(userId, task.id)).completed, false);

    const listed = await api.listUserTasks(userId, { q: "by user id" });
    assert.equal(listed.total, 1);
    assert.equal(listed.tasks[0]?.id, task.id);

    await api.deleteUserTask(userId, task.id);
    await refused(api.getUserTask(userId, task.id), 404);
  });

  test("another user's id in the path is refused", async () => {
    await refused(api.listUserTasks("someone-else"), 403);
    await refused(api.createUserTask("someone-else", { title: "not mine" }), 403);
  });

  test("a second Better Auth user sees nothing of the first one's", async () => {
    const mine = (await api.createTask({ title: "private" })).task;
    const other = await signUp(betterAuthUrl, "Bob");
    const theirs = createTodoApi(apiUrl, other.getToken);
    assert.notEqual(other.userId, userId);
    assert.equal((await theirs.listTasks()).total, 0);
    await refused(theirs.getTask(mine.id), 404);
    await refused(theirs.deleteTask(mine.id), 404);
    assert.equal((await api.getTask(mine.id)).title, "private");
  });

  test("a conditional save: 412 with the current task when another tab saved first", async () => {
    const { task, etag } = await api.createTask({ title: "draft" });
    assert.ok(etag);
    const tabA = await api.saveTask(task.id, { title: "tab A" }, etag);
    assert.notEqual(tabA.etag, etag, "every write makes a new ETag");

    const conflict = await refused(api.saveTask(task.id, { title: "tab B" }, etag), 412);
    const current = (conflict.problem as PreconditionProblem).task;
    assert.deepEqual(current, tabA.task, "the problem carries the current task");
    assert.equal(conflict.response.headers.get("ETag"), tabA.etag);
    assert.equal((await api.getTask(task.id)).title, "tab A", "nothing was written");

    const merged = await api.completeTaskIf(task.id, true, tabA.etag);
    assert.equal(merged.task.completed, true);
    await refused(api.deleteTaskIf(task.id, tabA.etag), 412);
    await api.deleteTaskIf(task.id, merged.etag);
  });

  test("If-None-Match: 304 while the task is unchanged", async () => {
    const { task, etag } = await api.createTask({ title: "cached" });
    assert.ok(etag);
    assert.equal(await api.getTaskIfChanged(task.id, etag), null);
    await api.updateTask(task.id, { title: "changed" });
    const fresh = await api.getTaskIfChanged(task.id, etag);
    assert.equal(fresh?.task.title, "changed");
    assert.notEqual(fresh?.etag, etag);
  });

  test("a retried create with its Idempotency-Key makes one task", async () => {
    const key = crypto.randomUUID();
    const first = await api.createTask({ title: "exactly once" }, key);
    const retry = await api.createTask({ title: "exactly once" }, key);
    assert.equal(first.replayed, false);
    assert.equal(retry.replayed, true);
    assert.deepEqual(retry.task, first.task);
    assert.equal((await api.listTasks({ q: "exactly once" })).total, 1);
    await refused(api.createTask({ title: "another body" }, key), 422);
    const byUser = await api.createUserTask(userId, { title: "exactly once" }, key);
    assert.equal(byUser.task.id, first.task.id, "one key, whichever path family");
  });

  test("incremental sync through the changes feed, with undo of a delete", async () => {
    const local = new Map<number, Task>();
    let cursor = await api.sync(local, null, 5);
    const listed = [];
    for await (const page of api.pages({ limit: 500 })) listed.push(...page.tasks);
    assert.deepEqual(
      new Map(listed.map((task) => [task.id, task])),
      local,
      "a full sync equals the list",
    );

    const { task } = await api.createTask({ title: "synced" });
    await api.updateTask(task.id, { priority: "high" });
    await api.deleteTask(task.id);
    const page = await api.changes(cursor);
    assert.deepEqual(
      page.changes.map((change) => change.op),
      ["delete"],
      "the create, update and delete of one task arrive as its latest state only",
    );
    cursor = await api.sync(local, cursor);
    assert.equal(local.has(task.id), false);

    const restored = await api.restoreTask(task.id);
    assert.equal(restored.task.priority, "high");
    cursor = await api.sync(local, cursor);
    assert.deepEqual(local.get(task.id), restored.task);
    assert.deepEqual((await api.userChanges(userId, cursor)).changes, []);

    await api.deleteTask(task.id);
    assert.equal((await api.restoreUserTask(userId, task.id)).task.id, task.id);
  });

  test("subscribe: changes as they commit, across the server ending the stream, resumable", async () => {
    const got: { change: Change; id: string; at: number }[] = [];
    let opened = 0;
    let opening = () => {};
    const waitOpen = () => new Promise<void>((resolve) => (opening = resolve));
    const arrived = async (count: number) => {
      const deadline = Date.now() + 8000;
      while (got.length < count && Date.now() < deadline) await sleep(20);
      assert.equal(got.length, count, JSON.stringify(got));
    };
    const firstOpen = waitOpen();
    const subscription = api.subscribe((change, id) => got.push({ change, id, at: Date.now() }), {
      cursor: await api.sync(new Map(), null), // from now on
      onOpen: () => {
        opened += 1;
        opening();
      },
    });
    await firstOpen;

    const before = Date.now();
    const { task: first } = await api.createTask({ title: "live one" });
    await arrived(1);
    assert.deepEqual(got[0]?.change, { op: "upsert", task: first });
    assert.ok(got[0]!.at - before < 1000, `delivered in ${got[0]!.at - before} ms`);

    // The server ends each stream after STREAM_MAX_SECONDS (3 s in this run): a change made
    // while the client reconnects arrives once it is back, from its Last-Event-ID.
    const reopened = waitOpen();
    const waiting = Date.now();
    while (opened < 2 && Date.now() - waiting < 6000) {
      await api.updateTask(first.id, { title: `live one, ${Date.now()}` });
      await sleep(300);
    }
    await reopened;
    const { task: second } = await api.createTask({ title: "live two" });
    const deadline = Date.now() + 8000;
    const has = (id: number) =>
      got.some((entry) => entry.change.op === "upsert" && entry.change.task.id === id);
    while (!has(second.id) && Date.now() < deadline) await sleep(20);
    subscription.close();
    assert.ok(has(second.id), "the change made after the reconnect arrived");
    assert.ok(opened >= 2, "reconnected after the server ended the stream");
    const ids = got.map((entry) => entry.id);
    assert.equal(new Set(ids).size, ids.length, "no change twice");
    // Each task's last state received is its state on the server.
    const last = new Map<number, Task>();
    for (const { change } of got) if (change.op === "upsert") last.set(change.task.id, change.task);
    assert.deepEqual(last.get(first.id), await api.getTask(first.id));
    assert.deepEqual(last.get(second.id), second);

    // Closed: nothing more arrives; a new subscription from the last id gets only what is new.
    const seen = got.length;
    const { task: third } = await api.createTask({ title: "live three" });
    await sleep(300);
    assert.equal(got.length, seen);
    const later: Change[] = [];
    const resumed = api.subscribe((change) => later.push(change), {
      cursor: subscription.lastEventId ?? undefined,
    });
    const until = Date.now() + 5000;
    while (later.length < 1 && Date.now() < until) await sleep(20);
    await sleep(200);
    resumed.close();
    assert.deepEqual(later, [{ op: "upsert", task: third }]);
  });

  test("a recurring task: completing returns the next occurrence's id, undo withdraws it", async () => {
    const { task } = await api.createTask({
      title: "stand-up",
      recurrence: "FREQ=WEEKLY;BYDAY=MO,WE,FR",
      timezone: "Europe/Berlin",
      due_date: "2027-01-04T08:00:00Z", // Monday 09:00 in Berlin
      remind_before: "PT15M",
    });
    assert.equal(task.series_id, task.id);
    assert.equal(task.remind_at, "2027-01-04T07:45:00.000000Z");
    const done = await api.setCompleted(task.id, true);
    assert.ok(done.next_task_id !== null);
    const next = await api.getTask(done.next_task_id!);
    assert.equal(next.due_date, "2027-01-06T08:00:00.000000Z"); // Wednesday
    assert.equal(next.series_id, task.id);
    const undone = await api.setCompleted(task.id, false);
    assert.equal(undone.next_task_id, null);
    await refused(api.getTask(next.id), 404);
    const bad = await refused(api.createTask({ title: "x", recurrence: "FREQ=HOURLY", due_date: next.due_date }), 422);
    assert.equal(bad.problem?.errors?.[0]?.pointer, "#/recurrence");
  });

  test("a reminder arrives on the subscription, and is listed as due until then", async () => {
    const reminded: Task[] = [];
    let opening = () => {};
    const opened = new Promise<void>((resolve) => (opening = resolve));
    const subscription = api.subscribe(() => {}, {
      cursor: await api.sync(new Map(), null),
      onOpen: () => opening(),
      onReminder: (task) => reminded.push(task),
    });
    await opened;
    const due = new Date(Date.now() + 1500).toISOString();
    const { task } = await api.createTask({ title: "call back", due_date: due, remind_before: "PT1S" });
    const deadline = Date.now() + 8000;
    while (reminded.length < 1 && Date.now() < deadline) await sleep(50);
    subscription.close();
    assert.deepEqual(reminded.map((t) => t.id), [task.id]);
    assert.deepEqual((await api.dueReminders()).tasks, []);
  });

  test("tags: counted by status, paged, renamed on every task at once", async () => {
    await api.createTask({ title: "a", tags: ["wrk", "urgent"] });
    await api.createTask({ title: "b", tags: ["wrk"], completed: true });
    // Page by page, one tag a page, to the end: each of the user's tags once.
    const seen: TagCount[] = [];
    let page = await api.listTags(1);
    for (;;) {
      seen.push(...page.tags);
      if (!page.next) break;
      page = await api.listTags(1, page.next);
    }
    assert.equal(seen.length, page.total);
    assert.equal(new Set(seen.map((t) => t.tag)).size, seen.length);
    assert.deepEqual(seen.find((t) => t.tag === "wrk"), { tag: "wrk", pending: 1, completed: 1 });
    assert.deepEqual(await api.renameTag("wrk", "work"), { tag: "work", pending: 1, completed: 1 });
    await refused(api.renameTag("wrk", "work"), 404);
  });

  // The model is tests/fake_openai.py's script: "add <title>" calls add_task, "list" list_tasks.
  test("the chatbot: a turn, the conversations, their messages, a delete", async () => {
    const first = await api.chat("add Oat milk from the chatbot");
    assert.match(first.conversation_id, /^[0-9a-f]{8}-[0-9a-f]{4}-/, "a UUID string");
    assert.deepEqual(
      first.tool_calls.map((call) => [call.name, call.outcome]),
      [["add_task", "ok"]],
    );
    const [added] = (await api.listTasks({ q: "Oat milk from the chatbot" })).tasks;
    assert.equal(added?.user_id, userId, "the agent acted as the signed-in user");

    const next = await api.chat("list", first.conversation_id);
    assert.equal(next.conversation_id, first.conversation_id);
    assert.deepEqual(
      next.tool_calls.map((call) => call.name),
      ["list_tasks"],
    );

    const conversations = await api.listConversations(10);
    assert.equal(conversations.total, 1);
    assert.equal(conversations.conversations[0]?.id, first.conversation_id);
    assert.equal(conversations.conversations[0]?.title, "add Oat milk from the chatbot");

    const firstPage = await api.conversationMessages(first.conversation_id, 3);
    assert.equal(firstPage.total, 4);
    assert.ok(firstPage.next, "a next page is linked");
    const rest = await api.conversationMessages(first.conversation_id, 3, firstPage.next);
    const messages = [...firstPage.messages, ...rest.messages];
    assert.deepEqual(
      messages.map((message) => message.role),
      ["user", "assistant", "user", "assistant"],
    );
    assert.equal(messages[1]?.content, first.response);
    assert.equal(rest.next, null);

    await refused(api.chat("list", "00000000-0000-4000-8000-000000000000"), 404);
    await api.deleteConversation(first.conversation_id);
    await refused(api.conversationMessages(first.conversation_id), 404);
    assert.equal((await api.listConversations()).total, 0);
    if (added) await api.deleteTask(added.id);
  });
});

test("nextLink finds rel=next among several links", () => {
  assert.equal(nextLink(null), null);
  assert.equal(nextLink('</api/tasks?cursor=a>; rel="prev"'), null);
  assert.equal(
    nextLink('</api/tasks?cursor=a>; rel="prev", </api/tasks?x=1,2&cursor=b>; rel="next"'),
    "/api/tasks?x=1,2&cursor=b",
  );
  assert.equal(nextLink("</p?cursor=c>;rel=next"), "/p?cursor=c");
  assert.equal(nextLink('</p?cursor=d>; title="x"; rel="last next"'), "/p?cursor=d");
});
