// The console's only script besides htmx. The Content-Security-Policy forbids inline
// scripts and event handlers, so a confirmation is a data-confirm attribute on a form
// or on its submit button, asked here before the form is sent.
document.addEventListener("submit", function (event) {
  var source = event.submitter && event.submitter.dataset.confirm ? event.submitter : event.target;
  var question = source.dataset ? source.dataset.confirm : "";
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
