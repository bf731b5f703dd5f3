// The Clickledger dashboard: a plain GraphQL client of this server (POST /graphql, and
// graphql-transport-ws on /graphql/ws). The session token lives in this closure only: never
// in storage or cookies, so a reload signs out. Everything shown goes through textContent.
(function () {
  'use strict';

  const TILES = [
    ['clicks', 'Clicks'],
    ['registrations', 'Registrations'],
    ['ftds', 'FTDs'],
    ['depositAmount', 'Deposits'],
    ['netRevenue', 'Net revenue'],
    ['commission', 'Commission'],
  ];
  const METRICS = 'clicks registrations ftds deposits depositAmount netRevenue commission';
  // A conversion refreshes the numbers within this long (debounced), and at most once a second.
  const DEBOUNCE_MS = 300;
  const MIN_REFRESH_GAP_MS = 1000;
  // Clicks publish no event: the numbers are also re-read on this period.
  const POLL_MS = 15000;
  const TICKER_LENGTH = 30;

  let session = null; // { token, role, affiliateId, timeZone, names: Map }
  let socket = null;
  let refreshTimer = null;
  let pollTimer = null;
  let lastRefresh = 0;
  let refreshing = false;
  let refreshAgain = false;
  let reconnectDelay = 1000;

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    for (const child of children) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  class GraphQLError extends Error {
    constructor(message, code) {
      super(message);
      this.code = code;
    }
  }

  async function graphql(query, variables) {
    const headers = { 'Content-Type': 'application/json' };
    if (session) headers.Authorization = 'Bearer ' + session.token;
    const response = await fetch('/graphql', {
      method: 'POST',
      headers,
      body: JSON.stringify({ query, variables: variables || {} }),
      credentials: 'omit',
    });
    let answer;
    try {
      answer = await response.json();
    } catch (_) {
      throw new GraphQLError('the server answered ' + response.status, 'HTTP');
    }
    if (answer.errors && answer.errors.length) {
      const first = answer.errors[0];
      const code = (first.extensions && first.extensions.code) || 'ERROR';
      if (code === 'UNAUTHENTICATED' && session) signOut('Your session ended; sign in again.');
      throw new GraphQLError(first.message, code);
    }
    return answer.data;
  }

  // --- signing in and out ---------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    const error = $('login-error');
    error.textContent = '';
    const button = event.target.querySelector('button');
    button.disabled = true;
    try {
      const data = await graphql(
        'mutation($input: LoginInput!) { login(input: $input) { token } }',
        { input: { tenantSlug: $('tenant').value.trim(), email: $('email').value.trim(), password: $('password').value } },
      );
      session = { token: data.login.token, names: new Map() };
      $('password').value = '';
      const me = await graphql('{ me { role user { email } tenant { name timeZone } affiliate { id name } } }');
      session.role = me.me.role;
      session.timeZone = me.me.tenant.timeZone;
      session.affiliateId = me.me.affiliate ? me.me.affiliate.id : null;
      const who = me.me.affiliate ? me.me.affiliate.name : me.me.user.email;
      $('who').textContent = who + ' · ' + me.me.tenant.name + ' (' + me.me.role.toLowerCase() + ')';
      showApp();
    } catch (err) {
      session = null;
      error.textContent = err.code === 'UNAUTHENTICATED' || err.code === 'BAD_USER_INPUT'
        ? 'Wrong tenant, e-mail or password.'
        : 'Sign-in failed: ' + err.message;
    } finally {
      button.disabled = false;
    }
  }

  function signOut(message) {
    session = null;
    if (socket) {
      const closing = socket;
      socket = null;
      closing.close(1000, 'signed out');
    }
    clearTimeout(refreshTimer);
    clearInterval(pollTimer);
    refreshTimer = null;
    for (const id of ['tiles', 'hourly', 'top-affiliates', 'top-subs', 'links', 'creatives', 'landing-pages', 'ticker', 'who', 'status']) {
      $(id).replaceChildren();
    }
    $('app').hidden = true;
    $('who').hidden = true;
    $('sign-out').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
  }

  function isOperator() {
    return session && session.role !== 'AFFILIATE';
  }

  async function showApp() {
    $('login').hidden = true;
    $('app').hidden = false;
    $('who').hidden = false;
    $('sign-out').hidden = false;
    $('operator-only').hidden = !isOperator();
    $('affiliate-only').hidden = isOperator();
    buildTiles();
    try {
      await loadNames();
    } catch (_) {
      // Names are a nicety: IDs are shown instead.
    }
    refreshNow();
    pollTimer = setInterval(refreshNow, POLL_MS);
    connect(null);
  }

  // --- the numbers ------------------------------------------------------------------------

  function buildTiles() {
    const list = $('tiles');
    list.replaceChildren();
    for (const [metric, label] of TILES) {
      const today = el('span', { class: 'today', 'data-metric': metric }, '…');
      const yesterday = el('span', { 'data-yesterday': metric }, '…');
      list.append(el('li', { class: 'tile', id: 'tile-' + metric },
        el('h3', {}, label), today, el('span', { class: 'yesterday' }, 'yesterday ', yesterday)));
    }
  }

  async function loadNames() {
    const mine = session;
    const affiliates = isOperator() ? ' affiliates(first: 100) { edges { node { id name } } }' : '';
    const data = await graphql('{ campaigns(first: 100) { edges { node { id name } } }' + affiliates + ' }');
    if (session !== mine) return;
    for (const edge of data.campaigns.edges) session.names.set(edge.node.id, edge.node.name);
    if (data.affiliates) for (const edge of data.affiliates.edges) session.names.set(edge.node.id, edge.node.name);
  }

  // YYYY-MM-DD of `date` in the tenant's time zone, as `stats` names days.
  function localDay(date) {
    return new Intl.DateTimeFormat('en-CA', {
      timeZone: session.timeZone, year: 'numeric', month: '2-digit', day: '2-digit',
    }).format(date);
  }

  function scheduleRefresh() {
    if (!session || refreshTimer) return;
    const wait = Math.max(DEBOUNCE_MS, lastRefresh + MIN_REFRESH_GAP_MS - Date.now());
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      refreshNow();
    }, wait);
  }

  async function refreshNow() {
    if (!session) return;
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    lastRefresh = Date.now();
    try {
      await refresh();
      $('status').textContent = '';
    } catch (err) {
      if (session) $('status').textContent = 'Could not refresh: ' + err.message;
    } finally {
      refreshing = false;
      if (refreshAgain) {
        refreshAgain = false;
        scheduleRefresh();
      }
    }
  }

  // One GraphQL operation per refresh (aliases), so the per-user request budget lasts.
  async function refresh() {
    const mine = session;
    const now = new Date();
    const to = new Date(now.getTime() + 3600 * 1000).toISOString();
    const twoDays = new Date(now.getTime() - 50 * 3600 * 1000).toISOString();
    const dayAgo = new Date(now.getTime() - 23 * 3600 * 1000).toISOString();
    const today = localDay(now);
    const todayOnly = [{ dimension: 'DAY', values: [today] }];
    const rows = (name, input) =>
      `${name}: stats(input: ${input}) { rows { affiliateId sub1 creative landingPage hour day metrics { ${METRICS} } } }`;
    const inputs = { days: { from: twoDays, to, groupBy: ['DAY'], sortBy: 'DAY', limit: 10 } };
    const parts = [rows('days', '$days')];
    const declare = ['$days: StatsInput!'];
    const add = (name, input) => {
      inputs[name] = input;
      parts.push(rows(name, '$' + name));
      declare.push('$' + name + ': StatsInput!');
    };
    const top = (dimension) => ({ from: twoDays, to, groupBy: [dimension, 'DAY'], filters: todayOnly, limit: 10 });
    if (isOperator()) {
      add('hours', { from: dayAgo, to, groupBy: ['HOUR'], sortBy: 'HOUR', descending: false, limit: 48 });
      add('affiliates', top('AFFILIATE'));
      add('subs', top('SUB1'));
    } else {
      add('creatives', top('CREATIVE'));
      add('landingPages', top('LANDING_PAGE'));
    }
    let query = `query(${declare.join(', ')}) { ${parts.join(' ')}`;
    if (!isOperator()) query += ' trackingLinks(first: 100) { edges { node { id code url campaignId status } } }';
    query += ' }';
    const data = await graphql(query, inputs);
    // Signed out (or in as someone else) meanwhile: this answer is not for this page.
    if (session !== mine) return;

    const yesterday = localDay(new Date(now.getTime() - 24 * 3600 * 1000));
    const byDay = new Map(data.days.rows.map((row) => [row.day, row.metrics]));
    showTiles(byDay.get(today), byDay.get(yesterday));
    if (isOperator()) {
      showChart(data.hours.rows, now);
      showTable($('top-affiliates'), 'Affiliate', data.affiliates.rows, (row) => nameOf(row.affiliateId));
      showTable($('top-subs'), 'Sub-ID', data.subs.rows, (row) => row.sub1);
    } else {
      showTable($('creatives'), 'Creative', data.creatives.rows, (row) => row.creative);
      showTable($('landing-pages'), 'Landing page', data.landingPages.rows, (row) => row.landingPage);
      showLinks(data.trackingLinks.edges.map((edge) => edge.node));
    }
  }

  function nameOf(id) {
    return id ? session.names.get(id) || id : null;
  }

  // Counts arrive as numbers, amounts as exact decimal strings ("123.450000"): amounts are
  // shown with at least two places, and never rounded.
  function formatValue(value) {
    if (value === null || value === undefined) return '0';
    if (typeof value === 'number') return String(value);
    const match = /^(-?\d+)(?:\.(\d+))?$/.exec(String(value));
    if (!match) return String(value);
    const places = (match[2] || '').replace(/0+$/, '').padEnd(2, '0');
    return match[1] + '.' + places;
  }

  function showTiles(today, yesterday) {
    for (const [metric] of TILES) {
      const tile = $('tile-' + metric);
      const now = tile.querySelector('[data-metric]');
      const before = tile.querySelector('[data-yesterday]');
      const value = formatValue(today ? today[metric] : 0);
      if (now.textContent !== value && now.textContent !== '…') {
        tile.classList.add('changed');
        setTimeout(() => tile.classList.remove('changed'), 1500);
      }
      now.textContent = value;
      before.textContent = formatValue(yesterday ? yesterday[metric] : 0);
    }
  }

  function showTable(table, label, rows, labelOf) {
    const head = el('tr', {}, el('th', { scope: 'col' }, label));
    for (const title of ['Clicks', 'Regs', 'FTDs', 'Net revenue', 'Commission']) {
      head.append(el('th', { scope: 'col', class: 'num' }, title));
    }
    const body = el('tbody');
    for (const row of rows) {
      const m = row.metrics;
      const tr = el('tr', {}, el('th', { scope: 'row' }, labelOf(row) || '(none)'));
      for (const value of [m.clicks, m.registrations, m.ftds, formatValue(m.netRevenue), formatValue(m.commission)]) {
        tr.append(el('td', { class: 'num' }, value));
      }
      body.append(tr);
    }
    if (!rows.length) body.append(el('tr', {}, el('td', { colspan: '6' }, 'Nothing yet today.')));
    table.replaceChildren(el('thead', {}, head), body);
  }

  function showLinks(links) {
    const table = $('links');
    const head = el('tr', {}, el('th', { scope: 'col' }, 'Campaign'), el('th', { scope: 'col' }, 'Link'),
      el('th', { scope: 'col' }, 'Status'));
    const body = el('tbody');
    for (const link of links) {
      body.append(el('tr', { 'data-code': link.code },
        el('td', {}, nameOf(link.campaignId) || link.campaignId),
        el('td', {}, el('code', {}, link.url)),
        el('td', {}, link.status.toLowerCase())));
    }
    if (!links.length) body.append(el('tr', {}, el('td', { colspan: '3' }, 'No links yet.')));
    table.replaceChildren(el('thead', {}, head), body);
  }

  // Bars of clicks for the last 24 hours (UTC hours, which the rollups are kept by), plain SVG.
  function showChart(rows, now) {
    const HOUR = 3600 * 1000;
    const last = Math.floor(now.getTime() / HOUR);
    const clicks = new Map();
    for (const row of rows) {
      const at = Date.parse(row.hour);
      if (!Number.isNaN(at)) clicks.set(Math.floor(at / HOUR), row.metrics.clicks);
    }
    const slots = [];
    for (let hour = last - 23; hour <= last; hour++) slots.push([hour, clicks.get(hour) || 0]);
    const max = Math.max(1, ...slots.map(([, count]) => count));
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 480 130');
    svg.setAttribute('role', 'img');
    const total = slots.reduce((sum, [, count]) => sum + count, 0);
    svg.setAttribute('aria-label', total + ' clicks in the last 24 hours, by hour');
    const hourLabel = new Intl.DateTimeFormat(undefined, { timeZone: session.timeZone, hour: '2-digit', minute: '2-digit' });
    slots.forEach(([hour, count], index) => {
      const height = Math.round((count / max) * 100);
      const bar = document.createElementNS(NS, 'rect');
      bar.setAttribute('x', String(index * 20 + 2));
      bar.setAttribute('y', String(110 - height));
      bar.setAttribute('width', '16');
      bar.setAttribute('height', String(Math.max(height, count ? 1 : 0)));
      const title = document.createElementNS(NS, 'title');
      title.textContent = hourLabel.format(new Date(hour * HOUR)) + ': ' + count + ' clicks';
      bar.append(title);
      svg.append(bar);
      if (index % 4 === 0) {
        const label = document.createElementNS(NS, 'text');
        label.setAttribute('x', String(index * 20 + 2));
        label.setAttribute('y', '124');
        label.textContent = hourLabel.format(new Date(hour * HOUR));
        svg.append(label);
      }
    });
    $('hourly').replaceChildren(svg);
  }

  // --- the live ticker (graphql-transport-ws) ----------------------------------------------

  const SUBSCRIPTION = `subscription($since: String) { conversions(since: $since) {
    cursor kind id event status amount currency receivedAt
    credits { affiliateId share commission commissionCurrency } } }`;

  function connect(since) {
    if (!session) return;
    const url = new URL('/graphql/ws', location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(url.href, 'graphql-transport-ws');
    socket = ws;
    let cursor = since;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'connection_init', payload: { token: session.token } }));
    ws.onmessage = (message) => {
      if (socket !== ws) return;
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch (_) {
        return;
      }
      if (frame.type === 'connection_ack') {
        reconnectDelay = 1000;
        $('live-state').textContent = 'live';
        ws.send(JSON.stringify({ id: 'conversions', type: 'subscribe', payload: { query: SUBSCRIPTION, variables: { since: cursor } } }));
      } else if (frame.type === 'ping') {
        ws.send(JSON.stringify({ type: 'pong' }));
      } else if (frame.type === 'next' && frame.payload && frame.payload.data) {
        const event = frame.payload.data.conversions;
        cursor = event.cursor;
        showEvent(event);
        scheduleRefresh();
      } else if (frame.type === 'error') {
        // E.g. a cursor too old to replay: the numbers are re-read, and the ticker goes on
        // from now.
        const reason = (frame.payload && frame.payload[0] && frame.payload[0].message) || 'refused';
        $('live-state').textContent = 'live (' + reason + ')';
        if (cursor !== null) {
          cursor = null;
          ws.send(JSON.stringify({ id: 'conversions', type: 'subscribe', payload: { query: SUBSCRIPTION, variables: { since: null } } }));
          scheduleRefresh();
        }
      }
    };
    ws.onclose = (close) => {
      if (socket !== ws || !session) return;
      socket = null;
      if (close.code === 4401 || close.code === 4403) {
        signOut('Your session ended; sign in again.');
        return;
      }
      $('live-state').textContent = 'reconnecting…';
      setTimeout(() => connect(cursor), reconnectDelay);
      reconnectDelay = Math.min(reconnectDelay * 2, 15000);
    };
  }

  function showEvent(event) {
    const time = new Date(event.receivedAt).toLocaleTimeString();
    const item = el('li', { class: event.status === 'rejected' ? 'rejected' : '' },
      el('time', { datetime: event.receivedAt }, time), ' ',
      el('span', { class: 'event' }, event.event), ' ',
      event.kind === 'conversion.status_changed' ? '→ ' + event.status + ' ' : '');
    if (event.amount !== null && event.amount !== undefined) {
      item.append(formatValue(event.amount) + ' ' + (event.currency || '') + ' ');
    }
    for (const credit of event.credits) {
      const who = isOperator() ? (nameOf(credit.affiliateId) || credit.affiliateId) + ' ' : '';
      const earned = credit.commission !== null && credit.commission !== undefined
        ? 'commission ' + formatValue(credit.commission) + ' ' + (credit.commissionCurrency || '')
        : '';
      item.append(el('span', { class: 'credit' }, '· ' + who + earned + ' '));
    }
    const ticker = $('ticker');
    ticker.prepend(item);
    while (ticker.children.length > TICKER_LENGTH) ticker.lastElementChild.remove();
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', () => signOut(''));
  });
})();
