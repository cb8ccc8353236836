// The console's only script besides htmx. The Content-Security-Policy forbids inline
// scripts and event handlers, so behaviour hangs on data attributes, wired up here.

// A confirmation is a data-confirm attribute on a form or on its submit button,
// asked before the form is sent.
document.addEventListener("submit", function (event) {
  var source = event.submitter && event.submitter.dataset.confirm ? event.submitter : event.target;
  var question = source.dataset ? source.dataset.confirm : "";
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// Below 1000 px the main menu collapses behind its "Menu" button.
document.addEventListener("click", function (event) {
  var toggle = event.target.closest ? event.target.closest(".menu-toggle") : null;
  if (!toggle) return;
  var open = toggle.getAttribute("aria-expanded") !== "true";
  toggle.setAttribute("aria-expanded", open ? "true" : "false");
  document.body.classList.toggle("menu-open", open);
});

// A Copy button puts its data-copy text on the clipboard and says so for a moment.
document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest("button.copy[data-copy]") : null;
  if (!button || !navigator.clipboard) return;
  navigator.clipboard.writeText(button.dataset.copy).then(function () {
    var label = button.textContent;
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = label; }, 1500);
  });
});
