// Zhucan kiosk screen. Plain JS, no build step, no external fetches.
// Renders the runtime's ScreenState (SSE /api/events, polling /api/state as fallback), speaks each
// result once (speechSynthesis, zh-CN), keeps the card input focused (a USB scanner is a keyboard),
// and drives operator mode (PIN, search, staff check-in, enrol with consent, delete).
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- language
  const TEXT = {
    zh: {
      idle: '请看摄像头，或刷卡', checking: '正在识别，请稍候',
      unknown: '未识别，请找工作人员', spoof: '请本人刷脸，不要使用照片',
      cardHint: '也可以刷卡就餐', seeStaff: '请找工作人员',
      subsidy: '补贴', selfPay: '自付', fromPrepaid: '从预存扣', balance: '余额',
      online: '在线', offline: '离线：本地结算，恢复网络后自动上传',
      backlog: (n) => `待上传 ${n} 笔`, lastSync: (t) => `上次同步 ${t}`, neverSynced: '尚未同步',
      linkDown: '屏幕未连接本机', staff: '工作人员', card: '刷卡 / 输入卡号', keypad: '数字键盘',
      ok: '确定', back: '删除', cancel: '取消', close: '退出', cardPad: '输入卡号', pinPad: '工作人员密码',
      proxyFor: (carer, name) => `代取：${carer} 为 ${name} 取餐`, carerTitle: (carer) => `代取人 ${carer}：为哪位老人取餐？`,
      collect: '取餐', carerNone: '没有登记的老人',
      cardEmpty: '请刷卡或输入卡号', cardFailed: '刷卡未成功', querying: '正在查询…',
      opTitle: '工作人员模式', search: '搜索', queryPh: '姓名或卡号', noHits: '没有找到',
      staffCheckin: '人工确认就餐', enrol: '录入人脸', reEnrol: '重新录入', unenrol: '删除人脸',
      reason: '原因（必填）', rNoCard: '忘带卡', rFace: '刷脸不成功', rBroken: '卡损坏',
      confirmMeal: '确认就餐', startEnrol: '开始录入', confirmDelete: '确定删除',
      enrolExplain: '人脸数据加密保存，只用于助餐结算；老人可以随时撤回同意，撤回后数据会被删除。不录入人脸也可以刷卡或由工作人员确认就餐。',
      deleteExplain: '删除后，本机和服务器上的人脸数据都会删除；老人仍可刷卡就餐。',
      consentFace: '同意采集人脸用于就餐结算（必选）', consentSharing: '同意在其他助餐点使用（可选）',
      enrolling: '请老人正对屏幕，保持不动…', enrolled: (n) => `已录入 ${n} 张人脸`, deleted: '已删除人脸数据',
      faceYes: '已录入人脸', faceNo: '未录入人脸', age: (n) => `${n}岁`, hasCard: '有卡', noCard: '无卡',
      working: '请稍候…', notServed: '未能就餐',
      dupTitle: '疑似重复登记', dupFace: (name) => `疑似与已登记的居民（${name}）为同一人`,
      dupExplain: '未登记。如确认不是同一人（例如双胞胎），请写明原因后确认登记；确认会被记录。',
      dupReason: '为何不是同一人（必填）', dupConfirm: '确认不是同一人，登记',
      orderPh: '本单(元)', delivered: '送餐', orderSet: '本单', delivery: '含送餐费',
      orderBad: '金额请写成 13 或 12.50', orderFailed: '本单未设定',
      order: (price, delivered) => `本单 ${price === null ? '定价' : money(price)}${delivered ? ' · 送餐' : ''}`,
    },
    en: {
      idle: 'Look at the camera, or scan your card', checking: 'Checking, please wait',
      unknown: 'Not recognised — please see staff', spoof: 'Please use your own face, not a photo',
      cardHint: 'You can also scan your card', seeStaff: 'Please see staff',
      subsidy: 'Subsidy', selfPay: 'You pay', fromPrepaid: 'From prepaid', balance: 'Balance',
      online: 'Online', offline: 'Offline: settling locally, will upload when the network is back',
      backlog: (n) => `${n} to upload`, lastSync: (t) => `Last sync ${t}`, neverSynced: 'Not synced yet',
      linkDown: 'Screen not connected to the kiosk', staff: 'Staff', card: 'Scan card / enter code', keypad: 'Keypad',
      ok: 'OK', back: 'Delete', cancel: 'Cancel', close: 'Exit', cardPad: 'Card code', pinPad: 'Staff PIN',
      proxyFor: (carer, name) => `${carer} collects for ${name} (代取)`, carerTitle: (carer) => `Carer ${carer}: whose meal?`,
      collect: 'Collect', carerNone: 'No resident registered',
      cardEmpty: 'Scan or enter a card code', cardFailed: 'Card not accepted', querying: 'Looking up…',
      opTitle: 'Staff mode', search: 'Search', queryPh: 'Name or card code', noHits: 'Nobody found',
      staffCheckin: 'Confirm meal by hand', enrol: 'Enrol face', reEnrol: 'Re-enrol', unenrol: 'Delete face',
      reason: 'Reason (required)', rNoCard: 'Forgot card', rFace: 'Face not recognised', rBroken: 'Card damaged',
      confirmMeal: 'Confirm meal', startEnrol: 'Start enrolment', confirmDelete: 'Delete',
      enrolExplain: 'Face data is stored encrypted and used only to settle meals; consent can be withdrawn at any time and the data is then deleted. Without a face, the resident can always use the card or be confirmed by staff.',
      deleteExplain: 'This deletes the face data here and on the server; the resident can still use the card.',
      consentFace: 'Agrees to face capture for meal settlement (required)', consentSharing: 'Agrees to use at other canteens (optional)',
      enrolling: 'Ask the resident to face the screen and keep still…', enrolled: (n) => `Enrolled ${n} face templates`, deleted: 'Face data deleted',
      faceYes: 'Face enrolled', faceNo: 'No face', age: (n) => `age ${n}`, hasCard: 'has a card', noCard: 'no card',
      working: 'Please wait…', notServed: 'No meal served',
      dupTitle: 'Possible duplicate enrolment', dupFace: (name) => `Possibly the same person as enrolled resident ${name}`,
      dupExplain: 'Not enrolled. If they are two people (twins, for example), say why and confirm; the confirmation is recorded.',
      dupReason: 'Why they are two people (required)', dupConfirm: 'Two people: enrol',
      orderPh: 'Price ¥', delivered: 'Deliver', orderSet: 'Set', delivery: 'incl. delivery',
      orderBad: 'Write the price as 13 or 12.50', orderFailed: 'Order not set',
      order: (price, delivered) => `Next meal ${price === null ? 'set price' : money(price)}${delivered ? ' · delivery' : ''}`,
    },
  };
  const params = new URLSearchParams(location.search);
  let lang = params.get('lang') || safeGet('zhucan.lang') || 'zh';
  if (lang !== 'en') lang = 'zh';
  if (params.get('lang')) safeSet('zhucan.lang', lang);
  const t = (key, ...args) => {
    const v = TEXT[lang][key];
    return typeof v === 'function' ? v(...args) : v;
  };

  function safeGet(k) { try { return localStorage.getItem(k); } catch (e) { return null; } }
  function safeSet(k, v) { try { localStorage.setItem(k, v); } catch (e) { /* private mode */ } }

  function applyLang() {
    document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
    document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
    document.querySelectorAll('[data-i18n-ph]').forEach((el) => { el.placeholder = t(el.dataset.i18nPh); });
    const [zh, en] = $('lang').querySelectorAll('span');
    zh.classList.toggle('on', lang === 'zh');
    en.classList.toggle('on', lang === 'en');
    lastRendered = '';
    update();
  }
  $('lang').addEventListener('click', () => {
    lang = lang === 'zh' ? 'en' : 'zh';
    safeSet('zhucan.lang', lang);
    applyLang();
  });

  // ---------------------------------------------------------------- money and speech
  function money(fen) {
    const sign = fen < 0 ? '-' : '';
    const a = Math.abs(fen);
    return `${sign}¥${Math.floor(a / 100)}.${String(a % 100).padStart(2, '0')}`;
  }
  const DIGITS = '零一二三四五六七八九';
  function cnInt(n) {
    if (n === 0) return '零';
    if (n === 2) return '两';
    if (n >= 10000) {
      const rest = n % 10000;
      return cnInt(Math.floor(n / 10000)) + '万' + (rest ? (rest < 1000 ? '零' : '') + cnInt(rest) : '');
    }
    const units = ['', '十', '百', '千'];
    const s = String(n);
    let out = '';
    let zero = false;
    for (let i = 0; i < s.length; i++) {
      const d = Number(s[i]);
      if (d === 0) { zero = true; continue; }
      if (zero && out) out += '零';
      zero = false;
      out += DIGITS[d] + units[s.length - 1 - i];
    }
    return out.startsWith('一十') ? out.slice(1) : out;
  }
  // 750 -> "七元五角"; spoken amounts are in words so every voice reads them the same way.
  function yuanWords(fen) {
    const a = Math.abs(fen);
    const y = Math.floor(a / 100), j = Math.floor((a % 100) / 10), f = a % 10;
    let s = y ? cnInt(y) + '元' : '';
    if (j) s += DIGITS[j] + '角';
    if (f) s += DIGITS[f] + '分';
    return (fen < 0 ? '负' : '') + (s || '零元');
  }
  function yuanEn(fen) {
    return fen % 100 === 0 ? `${fen / 100} yuan` : `${(fen / 100).toFixed(2)} yuan`;
  }
  function sayCheckin(c) {
    if (c.proxy_carer && !c.rejection) {
      return `${t('proxyFor', c.proxy_carer, c.name)}, ${sayOwn(c)}`;
    }
    return sayOwn(c);
  }
  function sayOwn(c) {
    if (c.rejection) {
      return lang === 'en' ? `${c.name}, ${c.rejection_zh || c.rejection}` : `${c.name}，${c.rejection_zh || c.rejection}`;
    }
    const prepaid = c.prepaid_balance !== null && c.prepaid_balance !== undefined && c.payment === 'prepaid';
    if (lang === 'en') {
      let s = `${c.name}, ${c.slot_en}, subsidy ${yuanEn(c.subsidy)}, you pay ${yuanEn(c.self_pay)}`;
      if (prepaid) s += `, from prepaid, balance ${yuanEn(c.prepaid_balance)}`;
      return s;
    }
    let s = `${c.name}，${c.slot_zh}，补贴${yuanWords(c.subsidy)}，`;
    s += prepaid ? `从预存扣${yuanWords(c.self_pay)}，余额${yuanWords(c.prepaid_balance)}` : `自付${yuanWords(c.self_pay)}`;
    return s;
  }
  window.kioskSpoken = [];
  window.kioskShown = [];
  function speak(text) {
    if (!text) return;
    window.kioskSpoken.push(text);
    if (!('speechSynthesis' in window)) return;
    try {
      const u = new SpeechSynthesisUtterance(text);
      u.lang = lang === 'en' ? 'en-US' : 'zh-CN';
      u.rate = 0.85; // a little slower for elders
      u.volume = 1;
      const voice = speechSynthesis.getVoices().find((v) => v.lang && v.lang.replace('_', '-').startsWith(u.lang.slice(0, 2)));
      if (voice) u.voice = voice;
      speechSynthesis.cancel();
      speechSynthesis.speak(u);
    } catch (e) { /* no voice: the screen still shows everything */ }
  }

  // ---------------------------------------------------------------- what to show
  // A "view" is {mode, message_zh, message_en, checkin, key}. Results are held on screen for a
  // while even if the runtime moves on, so an elder has time to read them.
  const HOLD_MS = { confirmed: 5000, refused: 5000, error: 5000, unknown: 3000, spoof: 3000 };
  let state = null;
  let hold = null; // {view, until}
  const spokenKeys = new Set();
  const heldKeys = new Set();
  let localSeq = 0;
  let lastRendered = '';

  function isResult(mode) { return Object.prototype.hasOwnProperty.call(HOLD_MS, mode); }

  function showResult(view) {
    if (heldKeys.has(view.key)) return;
    heldKeys.add(view.key);
    hold = { view, until: Date.now() + HOLD_MS[view.mode] };
    if (!spokenKeys.has(view.key)) {
      spokenKeys.add(view.key);
      speak(sayView(view));
    }
    update();
  }

  function sayView(v) {
    if (v.checkin) return sayCheckin(v.checkin);
    return lang === 'en' ? (v.message_en || t(v.mode)) : (v.message_zh || t(v.mode));
  }

  // A few prompts need the elder to act, and an elder who cannot read the screen must hear them:
  // said once each time they appear (not on every state update while they stay).
  const SPOKEN_HINTS = new Set(['turn_head']);
  let spokenHint = null;

  function onState(s) {
    state = s;
    renderStatus();
    const hint = s.mode === 'guiding' && SPOKEN_HINTS.has(s.hint) ? s.hint : null;
    if (hint && hint !== spokenHint) speak(lang === 'en' ? s.message_en : s.message_zh);
    spokenHint = hint;
    if (isResult(s.mode)) {
      const key = `${s.mode}:${s.event_seq}`;
      // a card or staff check-in already shown from its reply is not spoken twice
      const c = s.checkin;
      if (c && hold && hold.view.checkin && hold.view.local && hold.view.checkin.resident_id === c.resident_id &&
          Date.now() < hold.until) {
        heldKeys.add(key);
        spokenKeys.add(key);
      }
      showResult({ mode: s.mode, message_zh: s.message_zh, message_en: s.message_en, checkin: s.checkin, key });
    }
    update();
  }

  function currentView() {
    if (hold && Date.now() < hold.until) return hold.view;
    hold = null;
    if (!state) return { mode: 'idle' };
    if ((state.mode === 'confirmed' || state.mode === 'refused') && heldKeys.has(`${state.mode}:${state.event_seq}`)) {
      return { mode: 'idle' }; // shown long enough; back to the welcome screen
    }
    return state;
  }

  const ICONS = { confirmed: '✓', unknown: '✗', spoof: '✗', error: '✗', guiding: '!', refused: '!', checking: '…', operator: '⚙' };

  function el(tag, cls, text, attrs) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    if (attrs) Object.entries(attrs).forEach(([k, v]) => e.setAttribute(k, v));
    return e;
  }

  function message(v) {
    const m = lang === 'en' ? v.message_en : v.message_zh;
    return m || t(v.mode) || t('idle');
  }

  function update() {
    const v = currentView();
    renderFace(v);
    const sig = JSON.stringify([lang, v.mode, v.message_zh, v.message_en, v.checkin, v.key]);
    if (sig === lastRendered) return;
    lastRendered = sig;
    // what was shown when, by the page's own clock (tests read it; bounded)
    window.kioskShown.push({ mode: v.mode, at: Date.now() });
    if (window.kioskShown.length > 200) window.kioskShown.shift();
    document.body.className = `mode-${v.mode}`;
    $('icon').textContent = ICONS[v.mode] || '';
    const title = $('title');
    const lines = $('lines');
    lines.replaceChildren();
    const line = (text, cls) => lines.appendChild(el('div', `line ${cls || ''}`, text));
    const c = v.checkin;
    if ((v.mode === 'confirmed' || v.mode === 'refused') && c) {
      title.className = 'title name';
      title.textContent = c.name;
      title.setAttribute('lang', 'zh-CN');
      if (c.proxy_carer) line(t('proxyFor', c.proxy_carer, c.name), 'proxy');
      line(lang === 'en' ? c.slot_en : c.slot_zh);
      if (v.mode === 'refused' || c.rejection) {
        line(c.rejection_zh || c.rejection || t('notServed'));
        line(t('seeStaff'), 'small');
      } else {
        line(`${t('subsidy')} ${money(c.subsidy)}`, 'num');
        const prepaid = c.payment === 'prepaid' && c.prepaid_balance !== null && c.prepaid_balance !== undefined;
        line(`${prepaid ? t('fromPrepaid') : t('selfPay')} ${money(c.self_pay)}`, 'pay num');
        if (prepaid) line(`${t('balance')} ${money(c.prepaid_balance)}`, 'small num');
        if (c.delivery_fee > 0) line(`${t('delivery')} ${money(c.delivery_fee)}`, 'small num delivery');
      }
    } else {
      title.removeAttribute('lang');
      // "未识别，请找工作人员" -> a short headline "未识别" and the rest on its own line
      const text = v.mode === 'idle' && !v.message_zh ? t('idle') : message(v);
      const cut = text.search(/[，,；;:：]|—/);
      const head = cut > 0 ? text.slice(0, cut).trim() : text;
      const rest = cut > 0 ? text.slice(cut + 1).replace(/^[\s—-]+/, '') : '';
      title.className = head.length <= 6 ? 'title' : 'title msg';
      title.textContent = head;
      if (rest) line(rest);
      if (v.mode === 'unknown') line(t('cardHint'), 'small');
      if (v.mode === 'error' && v.detail) line(v.detail, 'small');
    }
    fit();
  }

  // ---------------------------------------------------------------- fit to the screen
  // A resident's name is never wrapped: a long one (阿依古丽·买买提) shrinks to the width it has.
  // Then, if the result is taller than its pane (a small screen, a long rejection, English), all
  // of it shrinks together. After every render, and whenever the pane changes size (the screen is
  // turned, the browser window resized) or the fonts arrive.
  function fit() {
    const result = $('result');
    const title = $('title');
    result.style.setProperty('--fit', '1');
    title.style.removeProperty('--name');
    if (!result.clientHeight) return; // not laid out
    const fitName = () => {
      if (!title.classList.contains('name')) return;
      let k = parseFloat(title.style.getPropertyValue('--name')) || 1;
      for (let i = 0; i < 4 && title.scrollWidth > title.clientWidth; i++) {
        k *= (title.clientWidth / title.scrollWidth) * 0.99;
        title.style.setProperty('--name', String(k));
      }
    };
    fitName();
    let k = 1;
    for (let i = 0; i < 4; i++) {
      const need = $('lines').getBoundingClientRect().bottom - title.parentElement.getBoundingClientRect().top;
      if (need <= result.clientHeight) break;
      k = Math.max(0.3, k * (result.clientHeight / need) * 0.98);
      result.style.setProperty('--fit', String(k));
      fitName();
    }
  }
  if (window.ResizeObserver) new ResizeObserver(() => fit()).observe($('result'));
  else window.addEventListener('resize', () => fit());
  if (document.fonts) {
    document.fonts.ready.then(() => fit());
    document.fonts.addEventListener('loadingdone', () => fit());
  }

  // ---------------------------------------------------------------- status bar
  function pad2(n) { return String(n).padStart(2, '0'); }
  function hhmm(d) { return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`; }
  function renderStatus() {
    if (!state) return;
    $('canteen').textContent = state.canteen_name;
    $('net').classList.toggle('offline', !state.online);
    $('net-text').textContent = state.online ? t('online') : t('offline');
    const d = state.last_sync_at ? new Date(state.last_sync_at) : null;
    const synced = d && !isNaN(d) ? t('lastSync', hhmm(d)) : t('neverSynced');
    $('backlog').textContent = `${t('backlog', state.outbox_backlog)} · ${synced}`;
    $('backlog').classList.toggle('warn', state.outbox_backlog > 0);
    const o = state.order;
    $('order').hidden = !o;
    $('order').textContent = o ? t('order', o.price === undefined ? null : o.price, o.delivered) : '';
  }
  function tick() {
    const now = new Date();
    $('clock').textContent = hhmm(now);
    renderStatus();
    update();
  }

  // ---------------------------------------------------------------- preview and face box
  const img = $('preview');
  let previewUrl = null;
  let camRatio = null;
  function renderFace(v) {
    const f = state && state.face;
    const box = $('facebox');
    const showing = f && !img.hidden && v.mode !== 'idle';
    $('overlay').style.display = showing ? '' : 'none';
    if (!showing) return;
    $('overlay').setAttribute('viewBox', `0 0 ${f.frame_w} ${f.frame_h}`);
    box.setAttribute('x', f.x);
    box.setAttribute('y', f.y);
    box.setAttribute('width', f.w);
    box.setAttribute('height', f.h);
  }
  async function previewLoop() {
    for (;;) {
      try {
        const r = await fetch('/api/preview.jpg', { cache: 'no-store' });
        if (r.status === 200) {
          const url = URL.createObjectURL(await r.blob());
          await new Promise((ok) => { img.onload = ok; img.onerror = ok; img.src = url; });
          if (previewUrl) URL.revokeObjectURL(previewUrl);
          previewUrl = url;
          // the camera pane takes the picture's shape (kiosk.css)
          if (img.naturalWidth && img.naturalHeight) {
            const r = `${img.naturalWidth} / ${img.naturalHeight}`;
            if (r !== camRatio) { camRatio = r; img.parentElement.style.setProperty('--cam-r', r); }
          }
          img.hidden = false;
          $('nocam').hidden = true;
        } else {
          img.hidden = true;
          $('nocam').hidden = false;
        }
      } catch (e) {
        img.hidden = true;
        $('nocam').hidden = false;
      }
      await new Promise((ok) => setTimeout(ok, document.hidden ? 1000 : 150));
    }
  }

  // ---------------------------------------------------------------- state feed: SSE, then polling
  let pollTimer = null;
  let failures = 0;
  function linkOk() { failures = 0; $('link').hidden = true; }
  function linkBad() {
    failures += 1;
    if (failures >= 3) { $('link').hidden = false; $('link').textContent = t('linkDown'); }
  }
  async function pollOnce() {
    try {
      const r = await fetch('/api/state', { cache: 'no-store' });
      if (!r.ok) throw new Error(String(r.status));
      onState(await r.json());
      linkOk();
    } catch (e) { linkBad(); }
  }
  function startPolling() {
    if (pollTimer) return;
    pollOnce();
    pollTimer = setInterval(pollOnce, 1000);
  }
  function stopPolling() { if (pollTimer) { clearInterval(pollTimer); pollTimer = null; } }
  function connect() {
    if (!window.EventSource) { startPolling(); return; }
    const es = new EventSource('/api/events');
    es.addEventListener('state', (e) => {
      stopPolling();
      linkOk();
      onState(JSON.parse(e.data));
    });
    es.onerror = () => { startPolling(); }; // EventSource reconnects by itself meanwhile
  }

  // ---------------------------------------------------------------- API
  async function post(path, body) {
    try {
      const r = await fetch(path, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
      });
      const data = await r.json().catch(() => ({}));
      if (r.ok) return { ok: true, data };
      const err = (data && data.error) || {};
      return {
        ok: false, field: err.field, code: err.code, duplicateOf: err.duplicate_of,
        message: err.message || `HTTP ${r.status}`,
      };
    } catch (e) {
      return { ok: false, field: null, message: t('linkDown') };
    }
  }

  function showCheckinReply(view) {
    localSeq += 1;
    showResult({
      mode: view.rejection ? 'refused' : 'confirmed', checkin: view, key: `local:${localSeq}`, local: true,
    });
  }
  function showError(message, detail) {
    localSeq += 1;
    showResult({ mode: 'error', message_zh: message, message_en: message, detail, key: `local:${localSeq}` });
  }

  // ---------------------------------------------------------------- card input
  const card = $('card');
  let busy = false;
  async function submitCard(code, residentId) {
    code = (code || '').trim();
    if (busy) return;
    if (!code) { showError(t('cardEmpty')); return; }
    busy = true;
    hold = { view: { mode: 'checking', message_zh: TEXT.zh.querying, message_en: TEXT.en.querying, key: 'q' }, until: Date.now() + 15000 };
    update();
    const body = residentId === undefined ? { code } : { code, resident_id: residentId };
    const r = await post('/api/checkin/card', body);
    hold = null;
    busy = false;
    if (r.ok && r.data && r.data.carer) showCarer(code, r.data.carer);
    else if (r.ok) showCheckinReply(r.data);
    else showError(t('cardFailed'), r.message);
  }
  // 代取: the carer's card lists the elders linked to them; choosing one settles that meal
  function showCarer(code, carer) {
    $('carer-title').textContent = t('carerTitle', carer.name);
    const hits = $('carer-hits');
    hits.replaceChildren();
    if (!carer.residents.length) hits.appendChild(el('div', 'opmsg', t('carerNone')));
    for (const [id, name] of carer.residents) {
      const row = el('div', 'hit');
      row.appendChild(el('span', 'name', name, { lang: 'zh-CN' }));
      const go = el('button', 'btn primary', t('collect'), { type: 'button', 'data-resident': String(id) });
      go.addEventListener('click', () => { closeCarer(); submitCard(code, id); });
      row.appendChild(go);
      hits.appendChild(row);
    }
    $('carer').hidden = false;
    update();
  }
  function closeCarer() { $('carer').hidden = true; }
  $('carer-cancel').addEventListener('click', () => { closeCarer(); setTimeout(keepFocus, 0); });
  card.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      const code = card.value;
      card.value = '';
      submitCard(code);
    }
  });
  $('cardgo').addEventListener('click', () => { const code = card.value; card.value = ''; submitCard(code); });
  $('cardpad').addEventListener('click', () => openPad(t('cardPad'), false, (code) => submitCard(code)));

  // ---------------------------------------------------------------- counter order
  // "13", "12.5", "12.50" yuan -> fen; anything else is not a price
  function yuanToFen(s) {
    const m = /^\s*(\d{1,5})(?:\.(\d{1,2}))?\s*$/.exec(s);
    if (!m) return null;
    return parseInt(m[1], 10) * 100 + (m[2] ? parseInt(m[2].padEnd(2, '0'), 10) : 0);
  }
  async function setOrder() {
    const raw = $('order-price').value;
    const delivered = $('order-delivered').checked;
    let price = null;
    if (raw.trim()) {
      price = yuanToFen(raw);
      if (price === null) { showError(t('orderFailed'), t('orderBad')); return; }
    }
    const r = await post('/api/counter/order', price === null ? { delivered } : { price, delivered });
    if (!r.ok) { showError(t('orderFailed'), r.message); return; }
    $('order-price').value = '';
    $('order-delivered').checked = false;
    setTimeout(keepFocus, 0);
  }
  $('order-set').addEventListener('click', setOrder);
  $('order-price').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); setOrder(); } });
  function overlayOpen() { return !$('pad').hidden || !$('op').hidden || !$('carer').hidden; }
  function keepFocus() {
    // staff typing the order's price keep their field
    const typing = document.activeElement && document.activeElement.id === 'order-price';
    if (!overlayOpen() && !typing && document.activeElement !== card) card.focus({ preventScroll: true });
  }
  card.addEventListener('blur', () => setTimeout(keepFocus, 0));
  document.addEventListener('click', () => setTimeout(keepFocus, 0));

  // ---------------------------------------------------------------- numeric pad
  let padValue = '';
  let padMask = false;
  let padDone = null;
  function openPad(title, mask, done, error) {
    padValue = '';
    padMask = mask;
    padDone = done;
    $('pad-title').textContent = title;
    $('pad-error').textContent = error || '';
    renderPad();
    $('pad').hidden = false;
  }
  function renderPad() { $('pad-shown').textContent = padMask ? '●'.repeat(padValue.length) : padValue; }
  function closePad() { $('pad').hidden = true; padDone = null; setTimeout(keepFocus, 0); }
  $('pad').querySelectorAll('[data-key]').forEach((b) => b.addEventListener('click', () => {
    const k = b.dataset.key;
    if (k === 'back') padValue = padValue.slice(0, -1);
    else if (k === 'ok') {
      const done = padDone;
      const value = padValue;
      closePad();
      if (done && value) done(value);
      return;
    } else if (padValue.length < 20) padValue += k;
    renderPad();
  }));
  $('pad-cancel').addEventListener('click', closePad);

  // ---------------------------------------------------------------- operator mode
  let opPin = null;
  let opTarget = null;
  let opIdle = null;
  function opMsg(text, kind) {
    const m = $('op-msg');
    m.textContent = text || '';
    m.className = `opmsg ${kind || ''}`;
  }
  function bumpOpIdle() {
    clearTimeout(opIdle);
    opIdle = setTimeout(closeOperator, 120000); // unattended staff mode closes itself
  }
  function openOperator() {
    $('op').hidden = false;
    opMsg('');
    hidePanels();
    $('op-hits').replaceChildren();
    $('op-query').value = '';
    $('op-query').focus();
    bumpOpIdle();
  }
  function closeOperator() {
    opPin = null;
    opTarget = null;
    clearTimeout(opIdle);
    $('op').hidden = true;
    setTimeout(keepFocus, 0);
  }
  function askPin(error) {
    openPad(t('pinPad'), true, (pin) => { opPin = pin; openOperator(); }, error);
  }
  function pinRejected(r) {
    if (r.field !== 'pin') return false;
    closeOperator();
    askPin(r.message);
    return true;
  }
  function hidePanels() { ['op-staff', 'op-enrol', 'op-dup', 'op-delete'].forEach((id) => { $(id).hidden = true; }); }
  function openPanel(id, hit) {
    hidePanels();
    opTarget = hit;
    const p = $(id);
    p.querySelectorAll('.who').forEach((w) => { w.textContent = hit.name; });
    p.hidden = false;
    p.scrollIntoView({ block: 'nearest' });
  }
  $('staff').addEventListener('click', () => askPin());
  $('op-close').addEventListener('click', closeOperator);
  $('op').addEventListener('input', bumpOpIdle);
  $('op').addEventListener('click', bumpOpIdle);
  document.querySelectorAll('[data-close-panel]').forEach((b) => b.addEventListener('click', hidePanels));

  $('op-search').addEventListener('submit', async (e) => {
    e.preventDefault();
    hidePanels();
    opMsg(t('working'));
    const r = await post('/api/operator/search', { pin: opPin || '', query: $('op-query').value });
    if (!r.ok) { if (!pinRejected(r)) opMsg(r.message, 'bad'); return; }
    opMsg(r.data.length ? '' : t('noHits'));
    const list = $('op-hits');
    list.replaceChildren();
    r.data.forEach((hit) => {
      const row = el('div', 'hit');
      row.appendChild(el('span', 'name', hit.name, { lang: 'zh-CN' }));
      row.appendChild(el('span', 'meta', `${hit.has_card ? t('hasCard') : t('noCard')} · ${t('age', hit.age)} · ${hit.face_enrolled ? t('faceYes') : t('faceNo')}`));
      const b1 = el('button', 'btn primary', t('staffCheckin'), { type: 'button' });
      b1.addEventListener('click', () => {
        $('op-reason').value = '';
        document.querySelectorAll('#op-staff [data-reason]').forEach((x) => x.classList.remove('on'));
        $('op-staff-go').disabled = true;
        openPanel('op-staff', hit);
      });
      const b2 = el('button', 'btn', hit.face_enrolled ? t('reEnrol') : t('enrol'), { type: 'button' });
      b2.addEventListener('click', () => {
        $('op-consent-face').checked = false;
        $('op-consent-sharing').checked = false;
        $('op-enrol-go').disabled = true;
        openPanel('op-enrol', hit);
      });
      row.append(b1, b2);
      if (hit.face_enrolled) {
        const b3 = el('button', 'btn danger', t('unenrol'), { type: 'button' });
        b3.addEventListener('click', () => openPanel('op-delete', hit));
        row.appendChild(b3);
      }
      list.appendChild(row);
    });
  });

  document.querySelectorAll('#op-staff [data-reason]').forEach((b) => b.addEventListener('click', () => {
    document.querySelectorAll('#op-staff [data-reason]').forEach((x) => x.classList.toggle('on', x === b));
    $('op-reason').value = b.dataset.reason;
    $('op-staff-go').disabled = false;
  }));
  $('op-reason').addEventListener('input', () => { $('op-staff-go').disabled = !$('op-reason').value.trim(); });
  $('op-staff-go').addEventListener('click', async () => {
    const reason = $('op-reason').value.trim();
    if (!reason || !opTarget) return;
    opMsg(t('working'));
    const r = await post('/api/checkin/staff', { pin: opPin || '', resident_id: opTarget.id, reason });
    if (!r.ok) { if (!pinRejected(r)) opMsg(r.message, 'bad'); return; }
    closeOperator();
    showCheckinReply(r.data);
  });

  $('op-consent-face').addEventListener('change', () => { $('op-enrol-go').disabled = !$('op-consent-face').checked; });
  $('op-enrol-go').addEventListener('click', async () => {
    if (!opTarget || !$('op-consent-face').checked) return;
    const go = $('op-enrol-go');
    go.disabled = true;
    opMsg(t('enrolling'));
    const r = await post('/api/operator/enrol', {
      pin: opPin || '', resident_id: opTarget.id,
      consent_face: true, consent_sharing: $('op-consent-sharing').checked,
    });
    go.disabled = false;
    enrolAnswer(r);
  });

  // the server found this face on another resident's record: staff judge, and may confirm
  let dupOther = null;
  function enrolAnswer(r) {
    if (r.ok) {
      dupOther = null;
      hidePanels();
      opMsg(t('enrolled', r.data.templates), 'good');
      return;
    }
    if (pinRejected(r)) return;
    if (r.code === 'duplicate_face' && r.duplicateOf) {
      dupOther = r.duplicateOf;
      openPanel('op-dup', opTarget);
      $('op-dup-msg').textContent = `${TEXT.zh.dupFace(dupOther.name)} / ${TEXT.en.dupFace(dupOther.name)}`;
      $('op-dup-reason').value = '';
      $('op-dup-go').disabled = true;
      opMsg(t('dupFace', dupOther.name), 'bad');
      return;
    }
    opMsg(r.message, 'bad');
  }
  $('op-dup-reason').addEventListener('input', () => { $('op-dup-go').disabled = !$('op-dup-reason').value.trim(); });
  $('op-dup-go').addEventListener('click', async () => {
    const reason = $('op-dup-reason').value.trim();
    if (!reason || !opTarget || !dupOther) return;
    const go = $('op-dup-go');
    go.disabled = true;
    opMsg(t('working'));
    const r = await post('/api/operator/enrol/confirm-duplicate', {
      pin: opPin || '', resident_id: opTarget.id, other_resident_id: dupOther.resident_id, reason,
    });
    go.disabled = false;
    enrolAnswer(r);
  });

  $('op-delete-go').addEventListener('click', async () => {
    if (!opTarget) return;
    const r = await post('/api/operator/unenrol', { pin: opPin || '', resident_id: opTarget.id });
    if (!r.ok) { if (!pinRejected(r)) opMsg(r.message, 'bad'); return; }
    hidePanels();
    opMsg(t('deleted'), 'good');
  });

  // ---------------------------------------------------------------- start
  applyLang();
  tick();
  setInterval(tick, 250);
  connect();
  previewLoop();
  keepFocus();
}());
