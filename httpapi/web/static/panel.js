// tokenledger panel: a little JavaScript over pages that work without it.
// It checks names as they are typed, copies a new secret, selects rows, and
// asks for confirmation in place before a revoke or a rotation.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var namePattern = /^[A-Za-z0-9_-]{1,50}$/;

  // Names, checked as typed against the rules (and, on the create form,
  // against the account's other live tokens).
  function liveCheck(input, button, taken) {
    var out = $("name-check");
    function check() {
      var v = input.value, msg = "";
      if (v === "") msg = "";
      else if (v.length > 50) msg = "An API token name can only contain up to 50 characters.";
      else if (!namePattern.test(v)) msg = "You can only enter letters (a-z and A-Z), numbers (0-9), dashes (-), and underscores (_).";
      else if (taken.indexOf(v) >= 0) msg = "A conflicting API token with the name “" + v + "” already exists.";
      out.textContent = msg;
      out.hidden = msg === "";
      input.setAttribute("aria-invalid", msg === "" ? "false" : "true");
      button.disabled = msg !== "" || v === "";
    }
    input.addEventListener("input", check);
    check();
  }
  var tokenName = $("token-name");
  if (tokenName) {
    var taken = [];
    try { taken = JSON.parse(tokenName.getAttribute("data-live-names") || "[]"); } catch (e) {}
    liveCheck(tokenName, $("create-submit"), taken);
  }
  var newName = $("new-name");
  if (newName) {
    var current = document.querySelector("#rename-form input[name=name]").value;
    liveCheck(newName, $("update"), [current]);
  }

  // The date picker shows only when an expiration date is chosen.
  var never = $("expiry-never"), dated = $("expiry-date"), dateField = $("date-field");
  if (never && dated && dateField) {
    var sync = function () { dateField.hidden = !dated.checked; $("expires-date").required = dated.checked; };
    never.addEventListener("change", sync);
    dated.addEventListener("change", sync);
    sync();
  }

  // Copy the new secret. The clipboard API needs a secure context; elsewhere
  // the old select-and-copy still works.
  var copy = $("copy");
  if (copy) {
    copy.addEventListener("click", function () {
      var field = $(copy.getAttribute("data-copy"));
      var done = function () { $("copy-done").hidden = false; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () { field.select(); document.execCommand("copy"); done(); });
      } else {
        field.select();
        document.execCommand("copy");
        done();
      }
    });
  }

  // Rows: select all, count, and a confirmation in place before revoking.
  var all = $("select-all"), revoke = $("revoke-selected");
  if (all && revoke) {
    var boxes = Array.prototype.slice.call(document.querySelectorAll(".row-check"));
    var confirmBox = $("revoke-confirm");
    var update = function () {
      var n = boxes.filter(function (b) { return b.checked; }).length;
      revoke.disabled = n === 0;
      all.checked = n > 0 && n === boxes.length;
      all.indeterminate = n > 0 && n < boxes.length;
      $("selected-count").textContent = n === 0 ? "" : n + (n === 1 ? " token selected" : " tokens selected");
      $("revoke-confirm-text").textContent = "Are you sure that you want to revoke " +
        (n === 1 ? "the selected API token" : "the " + n + " selected API tokens") + "? Scripts that use them will stop working.";
      if (n === 0) confirmBox.hidden = true;
    };
    all.addEventListener("change", function () {
      boxes.forEach(function (b) { b.checked = all.checked; });
      update();
    });
    boxes.forEach(function (b) { b.addEventListener("change", update); });
    revoke.addEventListener("click", function (e) { e.preventDefault(); confirmBox.hidden = false; $("revoke-yes").focus(); });
    $("revoke-cancel").addEventListener("click", function () { confirmBox.hidden = true; });
    update();
  }
  var revokeOne = $("revoke-one");
  if (revokeOne) {
    revokeOne.addEventListener("click", function (e) { e.preventDefault(); $("revoke-one-confirm").hidden = false; revokeOne.hidden = true; });
    $("revoke-one-cancel").addEventListener("click", function () { $("revoke-one-confirm").hidden = true; revokeOne.hidden = false; });
  }

  var rotate = $("rotate");
  if (rotate) {
    rotate.addEventListener("click", function (e) { e.preventDefault(); $("rotate-confirm").hidden = false; rotate.hidden = true; $("rotate-yes").focus(); });
    $("rotate-cancel").addEventListener("click", function () { $("rotate-confirm").hidden = true; rotate.hidden = false; });
  }

  // A new page size shows at once.
  var size = $("page-size");
  if (size) size.addEventListener("change", function () { $("size-form").submit(); });
})();
