// interview-bot's web face: Ctrl+Enter sends an answer, and a grading's progress streams in
// (server-sent events); the page reloads once the grade's score is in and once the grade is ready.
// Everything works without it.
"use strict";
document.addEventListener("keydown", function (e) {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && e.target.matches("form[data-answer-form] textarea")) {
    e.preventDefault();
    var form = e.target.form;
    form.requestSubmit(form.querySelector("button[value=answer]"));
  }
});
document.addEventListener("submit", function (e) {
  // one send per click: a second press while the first is on its way would answer twice
  var form = e.target;
  if (form.dataset.sent) { e.preventDefault(); return; }
  form.dataset.sent = "1";
});
function follow(el) {
  var stage = el.querySelector("[data-stage]"), ahead = el.querySelector("[data-ahead]");
  var source = new EventSource(el.dataset.events);
  source.addEventListener("stage", function (e) {
    var d = JSON.parse(e.data);
    if (stage) stage.textContent = d.error ? "could not grade: " + d.error : d.stage;
    if (ahead) ahead.textContent = d.ahead ? "· " + d.ahead + " answer(s) ahead of yours" : "";
    // the score is in (the model still writes its corrections): show the grade now
    if (d.preview && !el.hasAttribute("data-preview")) { source.close(); window.location.reload(); }
  });
  source.addEventListener("done", function () {
    source.close();
    window.location.reload();
  });
}
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-events]").forEach(follow);
  var text = document.querySelector("form[data-answer-form] textarea");
  if (text && !document.querySelector("[data-events]")) text.focus();
});
