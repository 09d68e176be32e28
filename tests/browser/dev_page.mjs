// Drives the `voxguard dev` page in headless Debian chromium:
//   node tests/browser/dev_page.mjs <page url> [screenshot.png]
// Talks to the agent through the text box, sets Salesforce to hang with the
// page's fault control, and calls again until the Salesforce breaker card
// turns open, checking that every failing call is covered by a filler line
// and then an honest failure phrase. With a screenshot path, saves a
// full-page PNG at the end. Exits non-zero with a reason on any failure.

import { existsSync } from "node:fs";

const CHROMIUM = "/usr/bin/chromium";
const EMAIL = "chloe.okafor@northwind.example";
const MAX_CALLS = 6;
const DEADLINE_MS = 60_000;

const [url, screenshot] = process.argv.slice(2);
if (!url) {
  console.error("usage: node tests/browser/dev_page.mjs <page url> [screenshot.png]");
  process.exit(2);
}
if (!existsSync(CHROMIUM)) {
  console.error(`${CHROMIUM} is missing: run tests/browser/setup.sh (installs Debian's chromium)`);
  process.exit(1);
}
let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch (err) {
  console.error(`playwright-core is missing (${err.message}): run tests/browser/setup.sh`);
  process.exit(1);
}

const started = Date.now();
const remaining = () => Math.max(1_000, DEADLINE_MS - (Date.now() - started));
const say = (line) => console.log(line);

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox"],
});
const pageErrors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (err) => pageErrors.push(err.message));
  page.on("console", (msg) => {
    if (msg.type() === "error") pageErrors.push(msg.text());
  });

  await page.goto(url, { waitUntil: "domcontentloaded", timeout: remaining() });
  const greeting = await nextLine(page, 0, "agent answer");
  say(`greeting: ${greeting.text}`);
  await page.waitForFunction(
    () => document.querySelector("#card-salesforce .badge")?.textContent === "closed",
    null,
    { timeout: remaining() },
  );
  say("salesforce card: closed");

  // 1. A typed utterance gets the agent's reply in the transcript.
  let mark = await lineCount(page);
  await sendText(page, "Hi, we're a law firm, about eight people");
  await nextLine(page, mark, "user");
  const reply = await nextLine(page, mark, "agent answer");
  if (!reply.text.includes("team of 8")) {
    fail(`the reply does not acknowledge the team size: ${reply.text}`);
  }
  say(`reply: ${reply.text}`);

  // 2. The page's fault control sets Salesforce to hang.
  await page.click('#card-salesforce button[data-fault="hang"]');
  await page.waitForFunction(
    () => document.querySelector('#card-salesforce button[data-fault="hang"]')?.classList.contains("on"),
    null,
    { timeout: remaining() },
  );
  say("fault: salesforce hang");

  // 3. Each call that reaches Salesforce is covered by a filler and then a
  //    failure phrase, until the breaker opens and calls fail fast.
  let breaker = "closed";
  let calls = 0;
  while (breaker !== "open") {
    calls += 1;
    if (calls > MAX_CALLS) fail(`the Salesforce breaker is still ${breaker} after ${MAX_CALLS} calls`);
    if (calls > 1) {
      mark = await lineCount(page);
      await page.click("#restart");
      await nextLine(page, mark, "agent answer");
    }
    mark = await lineCount(page);
    await sendText(page, `sure, it's ${EMAIL}`);
    const finished = await nextLine(page, mark, "tool", (text) => text.startsWith("← salesforce_lookup"));
    if (!finished.classes.includes("fallback")) fail(`the hanging lookup did not fall back: ${finished.text}`);
    const failure = await nextLine(page, mark, "agent failure");
    const lines = await linesSince(page, mark);
    const fillerAt = lines.findIndex((l) => l.classes.includes("filler"));
    const failureAt = lines.findIndex((l) => l.classes.includes("failure"));
    breaker = await page.evaluate(() => document.querySelector("#card-salesforce")?.dataset.breaker);
    if (fillerAt >= 0) {
      if (fillerAt > failureAt) fail("the failure phrase came before the filler");
      say(`call ${calls}: filler "${lines[fillerAt].text}" then failure "${failure.text}"`);
    } else if (calls === 1) {
      fail(`the first hanging call had no filler before the failure: ${JSON.stringify(lines)}`);
    } else {
      say(`call ${calls}: failed fast (breaker open) with "${failure.text}"`);
    }
    if (breaker !== "open") {
      // The cards poll twice a second; give the last outcome time to show.
      breaker = await page
        .waitForFunction(
          () => document.querySelector("#card-salesforce")?.dataset.breaker === "open",
          null,
          { timeout: 1_200 },
        )
        .then(() => "open")
        .catch(() => breaker);
    }
  }
  const badge = await page.textContent("#card-salesforce .badge");
  if (badge !== "open") fail(`the Salesforce badge reads ${badge}`);
  say(`breaker: open after ${calls} calls`);

  if (pageErrors.length) fail(`the page logged errors: ${pageErrors.join("; ")}`);
  if (screenshot) {
    await page.screenshot({ path: screenshot, fullPage: true });
    say(`screenshot: ${screenshot}`);
  }
  say(`ok in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (err) {
  console.error(`dev page test failed: ${err.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}

function fail(message) {
  throw new Error(message);
}

async function sendText(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

async function lineCount(page) {
  return page.evaluate(() => document.querySelectorAll("#transcript .line").length);
}

async function linesSince(page, mark) {
  return page.evaluate(
    (mark) =>
      [...document.querySelectorAll("#transcript .line")].slice(mark).map((l) => ({
        classes: [...l.classList],
        text: (l.querySelector(".text") ?? l).textContent,
      })),
    mark,
  );
}

// The first transcript line after `mark` whose classes include all of
// `classes` (space separated) and whose text passes `accept`.
async function nextLine(page, mark, classes, accept = () => true) {
  const wanted = classes.split(" ");
  const deadline = Date.now() + remaining();
  for (;;) {
    const line = (await linesSince(page, mark)).find(
      (l) => wanted.every((c) => l.classes.includes(c)) && accept(l.text),
    );
    if (line) return line;
    if (Date.now() > deadline) {
      fail(`no "${classes}" line appeared; transcript since then: ${JSON.stringify(await linesSince(page, mark))}`);
    }
    await page.waitForTimeout(50);
  }
}
