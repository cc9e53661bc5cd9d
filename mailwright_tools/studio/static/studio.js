// The template studio's page: loads a template, previews edits as they are typed, publishes and restores.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);
let current = null;  // the loaded template: {template, locales: {locale: {subject, html, text}}, versions}
let timer = null;
let sequence = 0;

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
    body: JSON.stringify(body),
  };
  const response = await fetch(path, Object.assign({credentials: "same-origin"}, options));
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function parts() {
  return {subject: $("subject").value, html: $("html").value, text: $("text").value};
}

function fill(list, items) {
  list.replaceChildren(...items.map((item) => {
    const li = document.createElement("li");
    li.textContent = item.text;
    return li;
  }));
}

async function preview() {
  const mine = ++sequence;
  const result = await api("/api/preview", {template: current.template, locale: $("locale").value, parts: parts()});
  if (mine !== sequence) return;  // a later keystroke's preview is on its way
  fill($("problems"), result.problems);
  fill($("warnings"), result.warnings);
  $("status").textContent = result.ok ? "Passes the checks" : `${result.problems.length} problem(s)`;
  $("status").className = result.ok ? "ok" : "failing";
  $("publish").disabled = !result.ok;
  if (result.rendered.html !== undefined) {
    $("preview-desktop").srcdoc = result.rendered.html;
    $("preview-mobile").srcdoc = result.rendered.html;
  }
  $("preview-subject").textContent = result.rendered.subject || "";
  $("preview-text").textContent = result.rendered.text || "";
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(() => preview().catch(showError), 250);
}

function showError(error) {
  $("status").textContent = String(error.message || error);
  $("status").className = "failing";
}

function showVersions(versions) {
  $("versions").replaceChildren(...versions.map((v) => {
    const li = document.createElement("li");
    const when = v.last_modified ? new Date(v.last_modified * 1000).toLocaleString() : "";
    li.textContent = `${when} · ${v.source}${v.author ? " · " + v.author : ""}${v.note ? ": " + v.note : ""}`;
    if (v.latest) {
      const mark = document.createElement("strong");
      mark.textContent = " (live)";
      li.append(mark);
    } else {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary";
      button.textContent = "Restore";
      button.addEventListener("click", () => restore(v.version).catch(showError));
      li.append(button);
    }
    return li;
  }));
}

function showLocale() {
  const locale = current.locales[$("locale").value];
  $("subject").value = locale.subject;
  $("html").value = locale.html;
  $("text").value = locale.text;
  schedule();
}

let loading = 0;

async function load(templateId) {
  const mine = ++loading;
  const found = await api(`/api/templates/${encodeURIComponent(templateId)}`);
  if (mine !== loading) return;  // another template was picked while this one loaded
  current = found;
  const locales = Object.keys(current.locales);
  $("locale").replaceChildren(...locales.map((name) => new Option(name, name)));
  $("locale").value = locales.includes(current.default_locale) ? current.default_locale : locales[0];
  showVersions(current.versions);
  showLocale();
}

async function publish() {
  $("publish").disabled = true;
  try {
    const result = await api("/api/publish", {
      template: current.template, locale: $("locale").value, parts: parts(),
      note: $("note").value, author: $("author").value,
    });
    current.locales[$("locale").value] = parts();
    $("published").textContent = `Published version ${result.version}`;
    $("note").value = "";
    showVersions(result.versions);
  } catch (error) {
    $("published").textContent = String(error.message || error);
  } finally {
    $("publish").disabled = false;
  }
}

async function testSend() {
  $("test-send").disabled = true;
  try {
    const result = await api("/api/test-send", {
      template: current.template, locale: $("locale").value, parts: parts(), to: $("test-to").value,
    });
    $("test-sent").textContent = `Test sent to ${result.to}: request ${result.request_id}`;
  } catch (error) {
    $("test-sent").textContent = String(error.message || error);
  } finally {
    $("test-send").disabled = false;
  }
}

async function restore(version) {
  const result = await api("/api/restore", {template: current.template, version, author: $("author").value});
  $("published").textContent = `Restored: now version ${result.version}`;
  await load(current.template);
}

async function start() {
  const listing = await api("/api/templates");
  $("target").textContent = listing.target;
  $("template").replaceChildren(...listing.templates.map((name) => new Option(name, name)));
  $("template").addEventListener("change", () => load($("template").value).catch(showError));
  $("locale").addEventListener("change", showLocale);
  for (const id of ["subject", "html", "text"]) $(id).addEventListener("input", schedule);
  $("publish").addEventListener("click", publish);
  $("test-send").addEventListener("click", testSend);
  if (listing.templates.length) await load(listing.templates[0]);
}

start().catch(showError);
