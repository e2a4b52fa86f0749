// The playground: intent, sentiment and next-word suggestions for the text being typed.
// Next words go through POST /suggest with the previous answer's state, so only the characters
// typed since are sent; intent and sentiment ask /predict once typing pauses.
"use strict";

const $ = (id) => document.getElementById(id);
const keyInput = $("api-key");
keyInput.value = sessionStorage.getItem("rnnserve-api-key") || "";
keyInput.addEventListener("change", () => {
  sessionStorage.setItem("rnnserve-api-key", keyInput.value);
  typing.reset();
  discover().then(update);
});

async function call(path, body) {
  const headers = { "content-type": "application/json" };
  if (keyInput.value) headers["x-api-key"] = keyInput.value;
  const started = performance.now();
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const ms = performance.now() - started;
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = answer.error || {};
    const failure = new Error(`${response.status} ${error.type || ""}: ${error.message || error}`);
    failure.type = error.type;
    throw failure;
  }
  return { answer, ms };
}

function showError(error) {
  $("status").textContent = error ? String(error.message) : "";
  $("status").className = error ? "error" : "";
}

const models = { intent: null, sentiment: null, next: null };

async function discover() {
  try {
    const { answer } = await call("health");
    const by = (task) => (answer.models || []).filter((m) => m.task === task).map((m) => m.name);
    models.intent = by("intent")[0] || null;
    models.sentiment = by("sentiment")[0] || null;
    models.next = by("next-word")[0] || null;
    $("intent-model").textContent = models.intent || "no intent model";
    $("sentiment-model").textContent = models.sentiment || "no sentiment model";
    $("next-model").textContent = models.next || "no next-word model";
    showError(null);
  } catch (error) {
    showError(error);
  }
}

function fill(list, items) {
  list.replaceChildren(...items.map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    return item;
  }));
}

const percent = (score) => `${(100 * score).toFixed(1)}%`;

// Incremental suggestions: sends what was typed since the last answer, with its state.
const typing = {
  text: "",
  state: null,
  busy: false,
  reset() { this.text = ""; this.state = null; },
  async update(text) {
    if (!models.next || this.busy) return;
    this.busy = true;
    try {
      let result;
      if (this.state && text.startsWith(this.text)) {
        try {
          result = await call("suggest", { model: models.next, text: text.slice(this.text.length), state: this.state, top_k: 5 });
        } catch (error) {
          if (error.type !== "invalid_state" && error.type !== "stale_state") throw error;
        }
      }
      if (!result) result = await call("suggest", { model: models.next, text, top_k: 5 });
      this.text = text;
      this.state = result.answer.state;
      $("next-pending").textContent = result.answer.pending;
      // A word written onto the last one ("'re" after "we") is shown joined to "…"; a placeholder
      // (PTB's number token) says what it stands for.
      fill($("next-words"), result.answer.next.map((w) => `${w.joins ? "…" : ""}${w.token}${w.placeholder ? ` <${w.placeholder}>` : ""} ${percent(w.score)}`));
      $("next-latency").textContent = `${result.ms.toFixed(1)} ms`;
      $("next-read").textContent = String(result.answer.read);
      showError(null);
    } catch (error) {
      showError(error);
    } finally {
      this.busy = false;
      if ($("message").value !== this.text) this.update($("message").value);  // keystrokes meanwhile
    }
  },
};

async function classify(text) {
  const asked = [models.intent, models.sentiment].filter(Boolean);
  if (!asked.length || !text.trim()) return;
  try {
    const { answer, ms } = await call("predict", { inputs: [text], models: asked.map((model) => ({ model, params: { top_k: 3 } })) });
    for (const result of answer.results) {
      const output = result.outputs[0];
      const panel = result.model === models.intent ? "intent" : "sentiment";
      $(`${panel}-label`).textContent = output.label;
      $(`${panel}-score`).textContent = percent(output.score);
      $(`${panel}-latency`).textContent = `${ms.toFixed(1)} ms`;
      // A text longer than the model's window is read whole, in windows whose answers are averaged.
      $(`${panel}-windows`).hidden = !output.windows;
      $(`${panel}-windows`).textContent = output.windows ? `read whole in ${output.windows} windows` : "";
      if (panel === "intent") {
        $("intent-oos").hidden = !output.out_of_scope;
        fill($("intent-alternatives"), (output.alternatives || []).map((a) => `${a.label} ${percent(a.score)}`));
      }
    }
    showError(null);
  } catch (error) {
    showError(error);
  }
}

let pause = null;
function update() {
  const text = $("message").value;
  typing.update(text);
  clearTimeout(pause);
  pause = setTimeout(() => classify(text), 150);
}

$("message").addEventListener("input", update);
discover();
