// Ringmaster dashboard: the one script. Pages work without it; it adds the live log (SSE), live
// statuses and the actions, which call the JSON API with the session cookie and the CSRF header.
(function () {
  'use strict';

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrfToken = csrfMeta ? csrfMeta.getAttribute('content') : '';
  var ACTIVE = { pending: true, running: true };
  var POLL_MS = 2000;
  var MAX_WATCHED = 50;

  function tone(status) {
    if (status === 'succeeded' || status === 'completed') return 'ok';
    if (ACTIVE[status]) return 'active';
    if (status === 'cancelled' || status === 'aborted') return 'neutral';
    return 'bad';
  }

  // ---- actions: forms of class api-form are sent to the API as JSON ----

  function bodyOf(form) {
    var body = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled) return;
      if (el.type === 'checkbox') body[el.name] = el.checked;
      else if (el.value === '') return;
      else if (el.getAttribute('data-as') === 'number') body[el.name] = Number(el.value);
      else body[el.name] = el.value;
    });
    return body;
  }

  function errorText(answer, status) {
    if (!answer || typeof answer !== 'object') return 'The server answered ' + status + '.';
    var text = answer.error || 'The server answered ' + status + '.';
    if (Array.isArray(answer.details)) {
      text += ' ' + answer.details.map(function (d) { return d.field + ': ' + d.message; }).join('; ');
    }
    return text;
  }

  function submitApiForm(event) {
    event.preventDefault();
    var form = event.currentTarget;
    var question = form.getAttribute('data-confirm');
    if (question && !window.confirm(question)) return;
    var method = form.getAttribute('data-api-method');
    var errorBox = form.querySelector('.form-error');
    var button = form.querySelector('button[type="submit"]');
    if (errorBox) errorBox.textContent = '';
    if (button) button.disabled = true;
    fetch(form.getAttribute('data-api-path'), {
      method: method,
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': csrfToken },
      body: method === 'GET' ? undefined : JSON.stringify(bodyOf(form)),
    })
      .then(function (res) {
        return res.text().then(function (text) {
          var answer = null;
          try { answer = text ? JSON.parse(text) : null; } catch (e) { answer = null; }
          if (!res.ok) throw new Error(errorText(answer, res.status));
          return answer;
        });
      })
      .then(function (answer) {
        var after = form.getAttribute('data-after') || 'reload';
        if (after === 'reload') window.location.reload();
        else if (after === 'status') {
          if (answer && answer.id && answer.status) showStatus(answer.id, answer.status);
          if (button) button.disabled = false;
        } else window.location.assign(after.replace('{id}', encodeURIComponent(answer && answer.id ? answer.id : '')));
      })
      .catch(function (err) {
        if (errorBox) errorBox.textContent = err.message;
        if (button) button.disabled = false;
      });
  }

  Array.prototype.forEach.call(document.querySelectorAll('form.api-form'), function (form) {
    form.hidden = false;
    form.addEventListener('submit', submitApiForm);
  });

  // ---- live statuses: badges of queued and running builds follow the API ----

  var buildPage = document.querySelector('[data-build-page]');
  var buildPageId = buildPage ? buildPage.getAttribute('data-build-page') : null;

  function showStatus(buildId, status) {
    var badges = document.querySelectorAll('[data-build-status="' + buildId + '"]');
    var was = null;
    Array.prototype.forEach.call(badges, function (badge) {
      was = badge.getAttribute('data-status');
      badge.setAttribute('data-status', status);
      badge.className = 'status ' + tone(status);
      badge.textContent = status.replace(/_/g, ' ');
    });
    if (buildId === buildPageId && was !== status) onBuildPageStatus(was, status);
  }

  function watchedBuilds() {
    var ids = {};
    var list = [];
    Array.prototype.forEach.call(document.querySelectorAll('[data-build-status]'), function (badge) {
      var id = badge.getAttribute('data-build-status');
      if (id && ACTIVE[badge.getAttribute('data-status')] && !ids[id] && list.length < MAX_WATCHED) {
        ids[id] = true;
        list.push(id);
      }
    });
    return list;
  }

  function poll() {
    var ids = watchedBuilds();
    Promise.all(
      ids.map(function (id) {
        return fetch('/api/v1/builds/' + id, { credentials: 'same-origin', headers: { accept: 'application/json' } })
          .then(function (res) { return res.ok ? res.json() : null; })
          .then(function (build) { if (build && build.status) showStatus(id, build.status); })
          .catch(function () {});
      }),
    ).then(function () { window.setTimeout(poll, POLL_MS); });
  }
  window.setTimeout(poll, POLL_MS);

  // ---- the build page: actions that fit the status, and the live log ----

  function onBuildPageStatus(was, status) {
    var active = !!ACTIVE[status];
    Array.prototype.forEach.call(document.querySelectorAll('[data-when]'), function (el) {
      el.hidden = (el.getAttribute('data-when') === 'active') !== active;
    });
    var waits = document.getElementById('waits');
    if (waits && status !== 'pending') waits.hidden = true;
    // A restarted build has a new log: follow it from the start.
    if (active && was && !ACTIVE[was]) followLog(true);
  }

  var logBox = document.querySelector('pre[data-log-stream]');
  var source = null;

  function followLog(fresh) {
    if (!logBox) return;
    if (source) source.close();
    if (fresh) logBox.textContent = '';
    logBox.setAttribute('data-state', 'streaming');
    source = new EventSource(logBox.getAttribute('data-log-stream'));
    source.onmessage = function (e) {
      var atEnd = logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < 40;
      // Each message is a chunk of the log as written, its line breaks included.
      logBox.appendChild(document.createTextNode(e.data));
      if (atEnd) logBox.scrollTop = logBox.scrollHeight;
    };
    source.addEventListener('end', function () {
      source.close();
      source = null;
      logBox.setAttribute('data-state', 'ended');
    });
    source.onerror = function () {
      // The stream sends the whole log again on a new connection: start over after a pause.
      if (source) source.close();
      source = null;
      logBox.setAttribute('data-state', 'reconnecting');
      window.setTimeout(function () { followLog(true); }, 3000);
    };
  }
  followLog(false);
})();
