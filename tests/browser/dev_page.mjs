// Drives the `voxguard dev` page in headless Debian chromium:
//   node tests/browser/dev_page.mjs <page url> [screenshot.png] [--voice=caller.wav]
// Typed call (the page at ?mode=text): talks to the agent through the text
// box, sets Salesforce to hang with the page's fault control, and calls
// again until the Salesforce breaker card turns open, checking that every
// failing call is covered by a filler line and then an honest failure
// phrase.
// Spoken call (--voice): the page joins over WebRTC with caller.wav as its
// microphone (Chromium's fake capture device, played once); checks that the
// agent's voice reaches the page (Web Audio energy measured in the page),
// that captions and the agent's state arrive, that the spoken turn is
// answered, and that with Salesforce hanging the caller hears the agent
// within 750 ms of the lookup starting, and that with the simulated network
// voice hanging (the speech card's button) a typed turn is still answered
// out loud. Prints the page's figures.
// With a screenshot path, saves a full-page PNG at the end. Exits non-zero
// with a reason on any failure.

import { existsSync } from "node:fs";

const CHROMIUM = "/usr/bin/chromium";
const EMAIL = "chloe.okafor@northwind.example";
const MAX_CALLS = 6;
const DEADLINE_MS = 60_000;

const positional = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const voiceWav = process.argv.slice(2).find((a) => a.startsWith("--voice="))?.slice("--voice=".length);
const [url, screenshot] = positional;
if (!url) {
  console.error("usage: node tests/browser/dev_page.mjs <page url> [screenshot.png] [--voice=caller.wav]");
  process.exit(2);
}
// The spoken turn in caller.wav is answered with the team size.
const SPOKEN_ANSWER = /\b(12|twelve)\b/i;
// What the design promises: the caller hears something within this of a
// tool starting, whatever the service does.
const FILLER_LIMIT_MS = 750;
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

const args = ["--no-sandbox"];
if (voiceWav) {
  args.push(
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    `--use-file-for-fake-audio-capture=${voiceWav}%noloop`,
    "--autoplay-policy=no-user-gesture-required",
  );
}
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
const pageErrors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (err) => pageErrors.push(err.message));
  page.on("console", (msg) => {
    if (msg.type() === "error") pageErrors.push(msg.text());
  });

  if (voiceWav) {
    await spokenCall(page);
  } else {
    await typedCall(page);
  }

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

async function typedCall(page) {
  await page.goto(new URL("?mode=text", url).href, { waitUntil: "domcontentloaded", timeout: remaining() });
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
}

async function spokenCall(page) {
  await page.goto(url, { waitUntil: "domcontentloaded", timeout: remaining() });
  const figures = () => page.evaluate(() => {
    const f = window.voxguardFigures;
    return {
      joined: f.joinedAt != null,
      greetingMs: f.greetingMs,
      audibleFrames: f.agentAudibleFrames,
      states: f.states,
      turns: f.turns.map((t) => ({ kind: t.kind, mouthToEarMs: t.mouthToEarMs })),
      tools: f.tools.map((t) => ({ tool: t.tool, service: t.service, audibleMs: t.audibleMs, fillerMs: t.fillerMs, filler: t.filler, speakingAtStart: t.speakingAtStart, longestQuietMs: t.longestQuietMs, outcomeHeard: t.outcomeHeardAt != null })),
    };
  });
  const until = async (what, check) => {
    const deadline = Date.now() + remaining();
    for (;;) {
      const f = await figures();
      if (check(f)) return f;
      if (Date.now() > deadline) {
        const lines = await linesSince(page, 0);
        const status = await page.textContent("#status");
        const notice = await page.textContent("#notice");
        fail(`${what} did not happen; figures ${JSON.stringify(f)}; status "${status}"; notice "${notice}"; transcript ${JSON.stringify(lines)}`);
      }
      await page.waitForTimeout(50);
    }
  };

  // 1. The page joins with WebRTC and the agent's greeting is heard.
  let f = await until("joining the call", (f) => f.joined);
  say(`recognizer: ${await page.textContent("#notice")}`);
  f = await until("hearing the greeting", (f) => f.greetingMs != null);
  say(`greeting audible: ${Math.round(f.greetingMs)} ms after join`);
  const greeting = await nextLine(page, 0, "agent caption");
  say(`greeting caption: ${greeting.text}`);

  // 2. The microphone's turn (caller.wav) is heard by the agent, which
  //    answers out loud: mouth-to-ear measured in the page.
  f = await until("the spoken turn's answer", (f) => f.turns.some((t) => t.kind === "spoken" && t.mouthToEarMs != null));
  const spoken = f.turns.find((t) => t.kind === "spoken" && t.mouthToEarMs != null);
  say(`spoken turn: mouth-to-ear ${Math.round(spoken.mouthToEarMs)} ms`);
  const answer = await nextLine(page, 0, "agent caption", (text) => SPOKEN_ANSWER.test(text));
  say(`spoken turn answered: ${answer.text}`);

  // 3. With Salesforce hanging, a lookup is covered by the agent's voice
  //    within the promised 750 ms.
  await page.waitForFunction(() => document.querySelector("#agent-state")?.dataset.state === "listening", null, { timeout: remaining() });
  await page.click('#card-salesforce button[data-fault="hang"]');
  await page.waitForFunction(
    () => document.querySelector('#card-salesforce button[data-fault="hang"]')?.classList.contains("on"),
    null,
    { timeout: remaining() },
  );
  say("fault: salesforce hang");
  const mark = await lineCount(page);
  await sendText(page, `sure, it's ${EMAIL}`);
  f = await until("the Salesforce lookup being heard over", (f) => f.tools.some((t) => t.service === "salesforce" && t.audibleMs != null));
  let lookup = f.tools.find((t) => t.service === "salesforce");
  const heard = await nextLine(page, mark, "agent caption");
  say(`lookup covered: the caller heard the agent ${Math.round(lookup.audibleMs)} ms after ${lookup.tool} started (${lookup.speakingAtStart ? "already speaking" : "quiet"} at the start): "${heard.text}"`);
  if (lookup.audibleMs > FILLER_LIMIT_MS) fail(`the caller heard nothing for ${Math.round(lookup.audibleMs)} ms after the lookup started`);
  const typed = f.turns.find((t) => t.kind === "typed" && t.mouthToEarMs != null);
  if (typed) say(`typed turn: text-to-ear ${Math.round(typed.mouthToEarMs)} ms`);
  // No dead air until the hanging lookup's outcome is heard: its filler
  // plays when the agent would otherwise be quiet (and is withdrawn when
  // the agent's speech covered the wait), then its honest failure phrase.
  await nextLine(page, mark, "tool", (text) => text.startsWith("← salesforce_lookup"));
  const failure = await nextLine(page, mark, "agent caption failure");
  say(`failure phrase: "${failure.text}"`);
  f = await until("the lookup's outcome being heard", (f) => f.tools.some((t) => t.service === "salesforce" && t.outcomeHeard));
  lookup = f.tools.find((t) => t.service === "salesforce");
  const filler = lookup.fillerMs != null
    ? `filler "${lookup.filler}" audible ${Math.round(lookup.fillerMs)} ms after the start`
    : "no filler needed (the agent's speech covered the wait)";
  say(`lookup wait: longest silence ${Math.round(lookup.longestQuietMs)} ms until the outcome was heard; ${filler}`);
  if (lookup.longestQuietMs > FILLER_LIMIT_MS) fail(`the caller sat through ${Math.round(lookup.longestQuietMs)} ms of silence during the lookup`);
  say(`lookup transcript: ${JSON.stringify((await linesSince(page, mark)).map((l) => l.text))}`);

  f = await figures();
  if (f.audibleFrames < 100) fail(`only ${f.audibleFrames} audible 10 ms samples of the agent's voice`);
  for (const state of ["listening", "thinking", "speaking"]) {
    if (!f.states.includes(state)) fail(`the page never showed the agent ${state}: ${JSON.stringify(f.states)}`);
  }
  say(`agent audible: ${f.audibleFrames} samples; states seen: ${f.states.join(", ")}`);

  // 4. The speech cards: the recognizer (the simulator, so it has fault
  //    buttons) and the local voice with its measured first audio.
  for (const id of ["speech-stt-deepgram", "speech-tts-espeak"]) {
    await page.waitForSelector(`#${id}`, { timeout: remaining() });
  }
  const recognizer = await page.evaluate(() => {
    const card = document.querySelector("#speech-stt-deepgram");
    return { breaker: card.dataset.breaker, faults: card.querySelectorAll(".faults button").length, lat: card.querySelector(".lat").textContent };
  });
  if (recognizer.faults === 0) fail("the simulated recognizer's card has no fault buttons");
  say(`speech card stt.deepgram: ${recognizer.breaker}, ${recognizer.faults} faults, ${recognizer.lat}`);
  say(`speech card tts.espeak: ${await page.textContent("#speech-tts-espeak .lat")}`);

  // 5. The simulated network voice (first in the chain) hangs: the caller
  //    still hears the agent answer, from its cached phrases and then the
  //    local voice.
  // The agent done talking: listening, and a second without its voice.
  for (let quiet = false; !quiet;) {
    await page.waitForFunction(() => document.querySelector("#agent-state")?.dataset.state === "listening", null, { timeout: remaining() });
    const before = (await figures()).audibleFrames;
    await page.waitForTimeout(1000);
    quiet = (await figures()).audibleFrames === before;
  }
  await page.click('#speech-tts-openai button[data-fault="hang"]');
  await page.waitForFunction(
    () => document.querySelector('#speech-tts-openai button[data-fault="hang"]')?.classList.contains("on"),
    null,
    { timeout: remaining() },
  );
  say("fault: tts.openai hang");
  const turnsBefore = (await figures()).turns.length;
  const voiceMark = await lineCount(page);
  await sendText(page, "what happens next?");
  const typedTurn = (f) => f.turns.slice(turnsBefore).find((t) => t.kind === "typed");
  f = await until("the answer with the voice hanging being heard", (f) => typedTurn(f)?.mouthToEarMs != null);
  const hung = typedTurn(f);
  // A cached filler covers the wait (it needs no voice); the answer comes
  // in the local voice once the hanging one times out. The timing is
  // tests/voice_call.rs's to check (the filler 600 ms into the voice's
  // silence); here, that the answer is heard at all. Printed, not
  // asserted: through the browser this figure has ranged from 0.1 to
  // 3.3 s between runs, a spread not yet explained.
  const first = await nextLine(page, voiceMark, "agent caption");
  // The line after it was synthesized: by the local voice, once the
  // hanging one timed out.
  await nextLine(page, voiceMark, "agent caption", (text) => text !== first.text);
  const heardLines = (await linesSince(page, voiceMark)).filter((l) => l.classes.includes("caption")).map((l) => l.text);
  say(`answered with the voice hanging: text-to-ear ${Math.round(hung.mouthToEarMs)} ms; heard ${JSON.stringify(heardLines)}`);
  say(`speech card tts.openai: ${await page.textContent("#speech-tts-openai .badge")}, ${await page.textContent("#speech-tts-openai .lat")}`);
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
