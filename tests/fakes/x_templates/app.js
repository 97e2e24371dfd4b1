// A tiny single-page app imitating x.com's web client closely enough for the browser adapter:
// pages are shells, content comes from /i/api/graphql/<qid>/<Operation> like on X, and the DOM uses
// X's data-testid attributes.
(function () {
  "use strict";
  const CFG = window.__X__;
  const BEARER =
    "Bearer AAAAAAAAAAAAAAAAAAAAANRILgAAAAAAnNwIzUejRCOuH5E6I8xnZz4puTs%3D1Zv7ttfk8LF81IUq16cHjhLTvJu4FA33AGWWjCpTnA";
  const primary = document.querySelector('[data-testid="primaryColumn"]');
  const EMOJI = /(\p{Extended_Pictographic}\uFE0F?(?:\u200D\p{Extended_Pictographic}\uFE0F?)*)/u;
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function cookie(name) {
    const m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : "";
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) node.setAttribute(k, v);
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function gql(op, variables, post) {
    const qid = CFG.qids[op];
    const headers = {
      authorization: BEARER,
      "x-csrf-token": cookie("ct0"),
      "x-twitter-auth-type": "OAuth2Session",
      "x-twitter-active-user": "yes",
      "x-twitter-client-language": "en",
    };
    let res;
    if (post) {
      headers["content-type"] = "application/json";
      res = await fetch(`/i/api/graphql/${qid}/${op}`, {
        method: "POST",
        headers,
        credentials: "include",
        body: JSON.stringify({ variables, features: { responsive_web_edit_tweet_api_enabled: true }, queryId: qid }),
      });
    } else {
      const qs = "variables=" + encodeURIComponent(JSON.stringify(variables)) + "&features=" + encodeURIComponent("{}");
      res = await fetch(`/i/api/graphql/${qid}/${op}?${qs}`, { headers, credentials: "include" });
    }
    if (res.status === 401) {
      location.assign("/i/flow/login?redirect_after_login=" + encodeURIComponent(location.pathname));
      throw new Error("logged out");
    }
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      body = null;
    }
    return { status: res.status, body };
  }

  function fmt(n) {
    n = Math.max(0, Math.floor(Number(n) || 0));
    if (!n) return "";
    if (n < 1000) return String(n);
    for (const [v, s] of [[1e9, "B"], [1e6, "M"], [1e3, "K"]]) {
      if (n >= v) {
        const x = Math.floor((n / v) * 10) / 10;
        return (Number.isInteger(x) ? String(x) : x.toFixed(1)) + s;
      }
    }
    return String(n);
  }

  function parseCreated(s) {
    const m = /^\w{3} (\w{3}) (\d{2}) (\d{2}):(\d{2}):(\d{2}) \+0000 (\d{4})$/.exec(s || "");
    if (!m) return new Date(s);
    return new Date(Date.UTC(+m[6], MONTHS.indexOf(m[1]), +m[2], +m[3], +m[4], +m[5]));
  }

  function renderText(box, text) {
    for (const part of text.split(EMOJI)) {
      if (!part) continue;
      if (EMOJI.test(part)) {
        box.appendChild(el("img", { alt: part, draggable: "false", src: "data:image/gif;base64,R0lGODlhAQABAAAAACw=", class: "r-emoji" }));
      } else {
        box.appendChild(el("span", { class: "css-1jxf684" }, part));
      }
    }
  }

  function userOf(res) {
    const u = res.core.user_results.result;
    return { screen_name: (u.core || u.legacy).screen_name, name: (u.core || u.legacy).name };
  }

  function countButton(testid, n, one, many, action) {
    const label = CFG.ariaCounts && n ? `${n} ${n === 1 ? one : many}. ${action}` : action;
    const b = el("button", { "data-testid": testid, role: "button", type: "button", "aria-label": label });
    const c = el("span", { "data-testid": "app-text-transition-container" });
    c.appendChild(el("span", {}, fmt(n)));
    b.appendChild(c);
    return b;
  }

  function article(res, opts) {
    const t = res.legacy;
    const u = userOf(res);
    const views = Number((res.views && res.views.count) || 0);
    const a = el("article", { "data-testid": "tweet", role: "article", tabindex: opts.focal ? "-1" : "0" });
    if (t.in_reply_to_screen_name && !opts.focal) {
      const r = el("div", { class: "replying-to" }, "Replying to ");
      r.appendChild(el("a", { href: "/" + t.in_reply_to_screen_name, role: "link" }, "@" + t.in_reply_to_screen_name));
      a.appendChild(r);
    }
    const names = el("div", { "data-testid": "User-Name" });
    names.appendChild(el("a", { href: "/" + u.screen_name, role: "link" }, u.name));
    names.appendChild(el("a", { href: "/" + u.screen_name, role: "link", tabindex: "-1" }, "@" + u.screen_name));
    const created = parseCreated(t.created_at);
    const tl = el("a", { href: `/${u.screen_name}/status/${res.rest_id}`, role: "link", dir: "ltr" });
    tl.appendChild(el("time", { datetime: created.toISOString() }, `${MONTHS[created.getUTCMonth()]} ${created.getUTCDate()}`));
    names.appendChild(tl);
    a.appendChild(names);
    const text = el("div", { "data-testid": "tweetText", lang: "en", dir: "auto" });
    renderText(text, t.full_text);
    a.appendChild(text);
    if (opts.focal && t.quote_count) {
      const q = el("a", { href: `/${u.screen_name}/status/${res.rest_id}/quotes`, role: "link" });
      q.appendChild(el("span", {}, fmt(t.quote_count)));
      q.appendChild(el("span", {}, " Quotes"));
      a.appendChild(q);
    }
    const groupLabel = CFG.ariaCounts
      ? `${t.reply_count} replies, ${t.retweet_count} reposts, ${t.favorite_count} likes, ${t.bookmark_count} bookmarks, ${views} views`
      : null;
    const g = el("div", { role: "group", "aria-label": groupLabel });
    const reply = countButton("reply", t.reply_count, "Reply", "Replies", "Reply");
    reply.addEventListener("click", () => openComposer(res.rest_id, u.screen_name));
    g.appendChild(reply);
    g.appendChild(countButton("retweet", t.retweet_count, "repost", "reposts", "Repost"));
    g.appendChild(countButton("like", t.favorite_count, "Like", "Likes", "Like"));
    const v = el("a", {
      href: `/${u.screen_name}/status/${res.rest_id}/analytics`,
      role: "link",
      "aria-label": CFG.ariaCounts && views ? `${views} views. View post analytics` : "View post analytics",
    });
    const vc = el("span", { "data-testid": "app-text-transition-container" });
    vc.appendChild(el("span", {}, fmt(views)));
    v.appendChild(vc);
    g.appendChild(v);
    g.appendChild(countButton("bookmark", t.bookmark_count, "Bookmark", "Bookmarks", "Bookmark"));
    a.appendChild(g);
    return a;
  }

  function toast(message, link) {
    let t = document.querySelector('[data-testid="toast"]');
    if (!t) {
      t = el("div", { "data-testid": "toast", role: "alert" });
      document.body.appendChild(t);
    }
    t.textContent = message;
    if (link) t.appendChild(el("a", { href: link, role: "link" }, "View"));
  }

  // X's own empty state: a header and a body marked with their test ids (no wrapper test id)
  function emptyState(text, body) {
    const e = el("div", { class: "empty-state" });
    const h = el("div", { "data-testid": "empty_state_header_text", role: "heading", "aria-level": "2" });
    h.appendChild(el("span", {}, text));
    e.appendChild(h);
    const b = el("div", { "data-testid": "empty_state_body_text" });
    b.appendChild(el("span", {}, body || "When they post, their posts will show up here."));
    e.appendChild(b);
    primary.appendChild(e);
  }

  // what a timeline page shows instead of its tweets while the imitation's page mode is set
  function pageMode(mode) {
    if (mode === "error_page") {
      errorDetail("Hmm...this page doesn’t exist. Try searching for something else.");
    } else if (mode === "login_wall") {
      const w = el("div", { role: "dialog", "aria-modal": "true" });
      w.appendChild(el("h1", {}, "Sign in to X"));
      w.appendChild(el("input", { autocomplete: "username", name: "text", type: "text" }));
      w.appendChild(el("button", { "data-testid": "loginButton", role: "button" }, "Next"));
      primary.appendChild(w);
    } else if (mode === "odd_markup") {
      const list = el("section", { role: "region", "aria-label": "Timeline" });
      const a = el("article", { role: "article", "data-testid": "post-v2" });
      a.appendChild(el("div", {}, "A post in markup the adapter does not know"));
      list.appendChild(a);
      primary.appendChild(list);
    } // "blank": nothing at all
  }

  function errorDetail(text) {
    const e = el("div", { "data-testid": "error-detail" });
    e.appendChild(el("span", {}, text));
    primary.appendChild(e);
  }

  function somethingWrong() {
    const e = el("div", { role: "alert", class: "something-went-wrong" }, "Something went wrong. Try reloading.");
    const b = el("button", { role: "button", type: "button" }, "Retry");
    b.addEventListener("click", () => location.reload());
    e.appendChild(b);
    primary.appendChild(e);
  }

  function findInstructions(node, depth) {
    if (!node || typeof node !== "object" || depth > 12) return null;
    if (Array.isArray(node.instructions)) return node.instructions;
    for (const v of Object.values(node)) {
      const found = findInstructions(v, depth + 1);
      if (found) return found;
    }
    return null;
  }

  function entriesOf(body) {
    const out = { tweets: [], cursor: null };
    for (const ins of findInstructions(body, 0) || []) {
      for (const entry of ins.entries || []) {
        const c = entry.content || {};
        if (c.entryType === "TimelineTimelineCursor") {
          if (c.cursorType === "Bottom") out.cursor = c.value;
        } else if (c.entryType === "TimelineTimelineItem") {
          out.tweets.push(c.itemContent.tweet_results.result);
        } else if (c.entryType === "TimelineTimelineModule") {
          for (const it of c.items || []) out.tweets.push(it.item.itemContent.tweet_results.result);
        }
      }
    }
    return out;
  }

  async function timeline(op, vars, emptyText, emptyBody) {
    let cursor = null;
    let loading = false;
    let done = false;
    let shown = 0;
    const list = el("section", { role: "region", "aria-label": "Timeline" });
    primary.appendChild(list);
    async function more() {
      if (loading || done) return;
      loading = true;
      let r;
      try {
        r = await gql(op, vars(cursor));
      } catch (e) {
        loading = false;
        done = true;
        return;
      }
      if (r.status !== 200 || !r.body || !r.body.data) {
        done = true;
        loading = false;
        if (!shown) somethingWrong();
        return;
      }
      if (r.body.data.user && !r.body.data.user.result) {
        emptyState("This account doesn’t exist", "Try searching for another.");
        done = true;
        loading = false;
        return;
      }
      const page = entriesOf(r.body);
      for (const res of page.tweets) {
        const cell = el("div", { "data-testid": "cellInnerDiv" });
        cell.appendChild(article(res, {}));
        list.appendChild(cell);
        shown += 1;
      }
      if (!shown) emptyState(emptyText, emptyBody);
      if (!page.cursor || !page.tweets.length) done = true;
      cursor = page.cursor;
      loading = false;
    }
    window.addEventListener("scroll", () => {
      if (window.innerHeight + window.scrollY >= document.body.scrollHeight - 600) more();
    });
    await more();
  }

  async function statusPage(pathUser, focalId) {
    let r;
    try {
      r = await gql("TweetDetail", { focalTweetId: focalId, with_rux_injections: false, includePromotedContent: true });
    } catch (e) {
      return;
    }
    if (r.status !== 200 || !r.body) {
      somethingWrong();
      return;
    }
    const page = entriesOf(r.body);
    const focal = page.tweets.find((t) => t.rest_id === focalId);
    if (!focal) {
      errorDetail("Hmm...this page doesn’t exist. Try searching for something else.");
      return;
    }
    const author = userOf(focal).screen_name;
    if (author.toLowerCase() !== pathUser.toLowerCase()) {
      history.replaceState(null, "", `/${author}/status/${focalId}`);
    }
    for (const res of page.tweets) {
      const cell = el("div", { "data-testid": "cellInnerDiv" });
      cell.appendChild(article(res, { focal: res.rest_id === focalId }));
      primary.appendChild(cell);
    }
  }

  function openComposer(inReplyTo, replyToUser) {
    const old = document.querySelector('[role="dialog"]');
    if (old) old.remove();
    const dlg = el("div", { role: "dialog", "aria-modal": "true", "aria-labelledby": "modal-header" });
    if (inReplyTo) dlg.appendChild(el("div", { class: "replying-to" }, "Replying to @" + replyToUser));
    const ta = el("div", {
      "data-testid": "tweetTextarea_0",
      role: "textbox",
      contenteditable: "true",
      "aria-label": "Post text",
      "aria-multiline": "true",
      class: "public-DraftEditor-content",
      spellcheck: "true",
    });
    const btn = el("button", { "data-testid": "tweetButton", role: "button", type: "button", "aria-disabled": "true" });
    btn.disabled = true;
    btn.textContent = inReplyTo ? "Reply" : "Post";
    const sync = () => {
      const empty = !ta.innerText.trim();
      btn.disabled = empty;
      btn.setAttribute("aria-disabled", String(empty));
    };
    ta.addEventListener("input", sync);
    btn.addEventListener("click", async () => {
      if (btn.disabled) return;
      btn.disabled = true;
      const variables = {
        tweet_text: ta.innerText.replace(/\n$/, ""),
        dark_request: false,
        media: { media_entities: [], possibly_sensitive: false },
        semantic_annotation_ids: [],
        disallowed_reply_options: null,
      };
      if (inReplyTo) variables.reply = { in_reply_to_tweet_id: inReplyTo, exclude_reply_user_ids: [] };
      let r;
      try {
        r = await gql("CreateTweet", variables, true);
      } catch (e) {
        toast("Something went wrong, but don’t fret — let’s give it another shot.");
        sync();
        return;
      }
      const result = r.body && r.body.data && r.body.data.create_tweet && r.body.data.create_tweet.tweet_results.result;
      if (result && result.rest_id) {
        location.assign(`/${CFG.user}/status/${result.rest_id}`);
        return;
      }
      const err = r.body && r.body.errors && r.body.errors[0];
      toast(err ? err.message : "Something went wrong, but don’t fret — let’s give it another shot.");
      sync();
    });
    dlg.appendChild(ta);
    dlg.appendChild(btn);
    document.body.appendChild(dlg);
    ta.focus();
  }

  async function route() {
    const path = location.pathname;
    const params = new URLSearchParams(location.search);
    let m;
    if (path === "/home") {
      await timeline("HomeLatestTimeline", (cursor) => ({ count: 20, cursor }), "Welcome to X!");
    } else if (path === "/compose/post") {
      openComposer(null, null);
    } else if (path === "/search") {
      const q = params.get("q") || "";
      await timeline("SearchTimeline", (cursor) => ({ rawQuery: q, count: 20, cursor, querySource: "typed_query", product: "Latest" }), `No results for “${q}”`, "Try searching for something else.");
    } else if ((m = /^\/(\w{1,15})\/status\/(\d+)\/?$/.exec(path))) {
      await statusPage(m[1], m[2]);
    } else if ((m = /^\/(\w{1,15})\/with_replies\/?$/.exec(path))) {
      const u = m[1];
      await timeline("UserTweetsAndReplies", (cursor) => ({ screenName: u, count: 20, cursor }), `@${u} hasn’t posted`);
    } else if ((m = /^\/(\w{1,15})\/?$/.exec(path))) {
      const u = m[1];
      await timeline("UserTweets", (cursor) => ({ screenName: u, count: 20, cursor }), `@${u} hasn’t posted`);
    } else {
      errorDetail("Hmm...this page doesn’t exist. Try searching for something else.");
    }
  }

  if (CFG.pageMode) pageMode(CFG.pageMode);
  else route();
})();
