// The registry's status page (docs/registry-api.md, "Status page"). Plain JS,
// no build step, no library. The admin token is asked for once, kept in this
// tab's sessionStorage, and sent only in Authorization headers. The live
// updates come over one WebSocket to /api/v1/mesh/events (every network),
// opened with a one-use ticket (POST /api/v1/mesh/tickets) because a browser
// cannot send a header on a WebSocket and the token must not be in a URL.
// On every (re)connection the page loads everything again over REST and then
// applies the events, so it never drifts from the registry.
"use strict";
(() => {
    const KEY = "bifrost.registry.token";
    const $ = (id) => document.getElementById(id);
    let token = sessionStorage.getItem(KEY) || "";
    let nets = new Map();           // network id -> {net, peers: Map(id -> peer), paths: Map(from -> [path])}
    let ws = null;
    let retryMs = 1000, retryTimer = null;
    let loading = 0, queued = [];   // loads under way; the events that came meanwhile
    let generation = 0;             // bumped on logout: late answers of a previous session are dropped

    class AuthError extends Error {
        constructor (status) { super ("HTTP " + status); this.status = status; }
    }

    // One REST call with the token in the header; AuthError on 401/403
    async function api (method, path) {
        const reply = await fetch (path, {
            method, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
            headers: { Authorization: "Bearer " + token },
        });
        if (reply.status === 401 || reply.status === 403)
            throw new AuthError (reply.status);
        if (!reply.ok)
            throw new Error (method + " " + path + ": HTTP " + reply.status);
        return reply.status === 204 ? null : reply.json ();
    }

    function el (tag, cls, text) {
        const node = document.createElement (tag);
        if (cls)
            node.className = cls;
        if (text !== undefined)
            node.textContent = String (text);
        return node;
    }

    function ago (ms) {
        if (!ms)
            return "never";
        const s = Math.max (0, Math.round ((Date.now () - ms) / 1000));
        if (s < 60) return s + " s ago";
        if (s < 3600) return Math.floor (s / 60) + " min ago";
        if (s < 86400) return Math.floor (s / 3600) + " h ago";
        return Math.floor (s / 86400) + " d ago";
    }

    function setLive (on, text) {
        $("live").className = "live " + (on ? "on" : "off");
        $("live").textContent = text;
    }

    function showLogin (message, kind) {
        $("login").hidden = false;
        $("main").hidden = true;
        $("logout").hidden = true;
        $("auth-state").className = "state " + kind;
        $("auth-state").textContent = message;
        closeSocket ();
        setLive (false, "not connected");
        $("token").focus ();
    }

    function refused (error) {
        token = "";
        sessionStorage.removeItem (KEY);
        generation++;
        showLogin (error.status === 403
            ? "Wrong token: that is a peer token; the page needs the admin token (registry.admin_token)."
            : "Wrong token: the registry refused it (401). Enter the admin token (registry.admin_token).", "wrong");
    }

    // --- data

    async function loadAll () {
        const gen = generation;
        const list = await api ("GET", "/api/v1/mesh/networks");
        const fresh = new Map ();
        await Promise.all (list.networks.map (async (net) => {
            const [peers, paths] = await Promise.all ([
                api ("GET", "/api/v1/mesh/networks/" + encodeURIComponent (net.id) + "/peers"),
                api ("GET", "/api/v1/mesh/networks/" + encodeURIComponent (net.id) + "/paths"),
            ]);
            const entry = { net, peers: new Map (), paths: new Map () };
            for (const peer of peers.peers)
                entry.peers.set (peer.id, peer);
            for (const path of paths.paths) {
                if (!entry.paths.has (path.from))
                    entry.paths.set (path.from, []);
                entry.paths.get (path.from).push (path);
            }
            fresh.set (net.id, entry);
        }));
        if (gen !== generation)
            return false;
        for (const [id, entry] of fresh) {      // when a peer was first shown survives a reload
            const old = nets.get (id);
            if (old)
                for (const [pid, peer] of entry.peers)
                    if (old.peers.has (pid))
                        peer._shown = old.peers.get (pid)._shown;
        }
        nets = fresh;
        return true;
    }

    // Loads everything, then applies the events that came meanwhile (applying
    // one twice does no harm: every event sets a state, none adds to one). With
    // two loads under way, the events wait for the last one.
    async function resync () {
        loading++;
        let failed = null;
        try {
            if (await loadAll ())
                $("error").hidden = true;
        }
        catch (error) {
            failed = error;
        }
        if (--loading === 0) {
            const events = queued;
            queued = [];
            for (const event of events)
                apply (event);
        }
        if (failed instanceof AuthError)
            return refused (failed);
        if (failed) {
            $("error").textContent = "Cannot load: " + failed.message;
            $("error").hidden = false;
        }
        render ();
    }

    function apply (event) {
        const entry = nets.get (event.network);
        switch (event.event) {
            case "peer.joined":
            case "peer.changed":
                if (!entry)
                    return resync ();
                event.peer._shown = entry.peers.has (event.peer.id) ? entry.peers.get (event.peer.id)._shown : undefined;
                entry.peers.set (event.peer.id, event.peer);
                break;
            case "peer.left":
                if (entry) {
                    entry.peers.delete (event.peer.id);
                    entry.paths.delete (event.peer.id);
                    for (const [from, list] of entry.paths)
                        entry.paths.set (from, list.filter ((p) => p.peer !== event.peer.id));
                }
                break;
            case "paths.changed":
                if (entry)
                    entry.paths.set (event.from, event.paths);
                break;
            case "network.created":
            case "network.deleted":
                return resync ();
        }
    }

    // --- WebSocket

    function closeSocket () {
        clearTimeout (retryTimer);
        retryTimer = null;
        if (ws) {
            ws.onclose = ws.onmessage = ws.onerror = null;
            ws.close ();
            ws = null;
        }
    }

    function retry () {
        if (!nets.size && !loading)
            resync ();              // no stream yet: show the data at least
        setLive (false, "reconnecting in " + Math.round (retryMs / 1000) + " s");
        retryTimer = setTimeout (connect, retryMs);
        retryMs = Math.min (retryMs * 2, 15000);
    }

    async function connect () {
        closeSocket ();
        const gen = generation;
        let ticket;
        try {
            ticket = (await api ("POST", "/api/v1/mesh/tickets")).ticket;
        }
        catch (error) {
            if (error instanceof AuthError)
                return refused (error);
            return retry ();
        }
        if (gen !== generation)
            return;
        const scheme = location.protocol === "https:" ? "wss://" : "ws://";
        ws = new WebSocket (scheme + location.host + "/api/v1/mesh/events?ticket=" + encodeURIComponent (ticket));
        ws.onmessage = (message) => {
            let event;
            try { event = JSON.parse (message.data); } catch (e) { return; }
            if (event.event === "subscribed") {
                retryMs = 1000;
                setLive (true, "live");
                resync ();
            }
            else
            if (loading)
                queued.push (event);
            else {
                apply (event);
                render ();
            }
        };
        ws.onclose = () => { ws = null; retry (); };
    }

    // --- rendering

    function peerName (entry, id) {
        const peer = entry.peers.get (id);
        return peer ? peer.name : id;
    }

    function cell (row, cls, text, title) {
        const td = el ("td", cls, text);
        if (title)
            td.title = title;
        row.appendChild (td);
        return td;
    }

    function table (headings, cls) {
        const t = el ("table", cls);
        const head = el ("tr");
        for (const h of headings)
            head.appendChild (el ("th", null, h));
        t.appendChild (el ("thead")).appendChild (head);
        return [t, t.appendChild (el ("tbody"))];
    }

    function renderNetwork (entry) {
        const { net } = entry;
        const section = el ("section", "network");
        section.dataset.id = net.id;
        const peers = Array.from (entry.peers.values ());
        const online = peers.filter ((p) => p.online !== false).length;
        const h2 = section.appendChild (el ("h2", null, net.name + " "));
        h2.appendChild (el ("span", "meta", net.id + " · " + net.cidr + " · " + peers.length + (peers.length === 1 ? " peer, " : " peers, ") + online + " online"));

        const [pt, pbody] = table (["Name", "Virtual IP", "State", "Last seen", "Seen from", "Peer id"], "peers");
        const now = Date.now ();
        for (const peer of peers) {
            if (!peer._shown)
                peer._shown = now;
            const row = el ("tr", "peer");
            row.dataset.id = peer.id;
            row.dataset.shown = String (peer._shown);
            cell (row, "name", peer.name);
            cell (row, "vip", peer.vip);
            const on = peer.online !== false;
            cell (row, "state " + (on ? "online" : "offline"), on ? "online" : "offline");
            const seen = cell (row, "seen", ago (peer.last_seen),
                               peer.last_seen ? new Date (peer.last_seen).toISOString () : "");
            seen.dataset.ms = String (peer.last_seen || 0);
            cell (row, "reflexive", peer.reflexive || "");
            cell (row, "id", peer.id);
            pbody.appendChild (row);
        }
        if (!peers.length)
            pbody.appendChild (el ("tr")).appendChild (el ("td", "empty", "no peers registered"));
        section.appendChild (pt);

        section.appendChild (el ("h3", null, "Paths, as the peers report them"));
        const [tt, tbody] = table (["From", "To", "Path", "Via", "RTT", "Reported"], "paths");
        let count = 0;
        for (const [from, list] of entry.paths)
            for (const path of list) {
                const row = el ("tr", "path");
                row.dataset.from = from;
                row.dataset.to = path.peer;
                cell (row, "from", peerName (entry, from));
                cell (row, "to", peerName (entry, path.peer));
                cell (row, "kind " + path.path, path.path);
                cell (row, "via", path.via ? (path.path === "peer" ? peerName (entry, path.via) : path.via) : "");
                cell (row, "rtt", path.rtt_ms !== undefined ? path.rtt_ms + " ms" : "");
                const when = cell (row, "seen", ago (path.updated), new Date (path.updated).toISOString ());
                when.dataset.ms = String (path.updated);
                tbody.appendChild (row);
                count++;
            }
        if (!count)
            tbody.appendChild (el ("tr")).appendChild (el ("td", "empty", "no path reported yet"));
        section.appendChild (tt);
        return section;
    }

    function render () {
        if (!token)
            return;
        $("login").hidden = true;
        $("main").hidden = false;
        $("logout").hidden = false;
        const box = $("networks");
        box.replaceChildren (...Array.from (nets.values ()).map (renderNetwork));
        let peers = 0;
        for (const entry of nets.values ())
            peers += entry.peers.size;
        $("summary").textContent = nets.size + " networks, " + peers + " peers";
        if (!nets.size)
            box.appendChild (el ("p", "empty", "no networks yet"));
    }

    // The "last seen" column ages without an event
    setInterval (() => {
        for (const td of document.querySelectorAll ("td.seen"))
            td.textContent = ago (Number (td.dataset.ms));
    }, 1000);

    // --- start

    // The stream first, then the load (on "subscribed"): no event between the
    // two is missed, and a page costs 2 + 2 x networks requests (the registry's
    // rate limit by default: a burst of 40, then 20/s)
    function start () {
        if (!token)
            return showLogin ("Token required: enter the registry's admin token (registry.admin_token).", "required");
        render ();
        $("summary").textContent = "Loading...";
        connect ();
    }

    $("login-form").addEventListener ("submit", (event) => {
        event.preventDefault ();
        token = $("token").value.trim ();
        $("token").value = "";
        if (token)
            sessionStorage.setItem (KEY, token);
        start ();
    });
    $("logout").addEventListener ("click", () => {
        token = "";
        sessionStorage.removeItem (KEY);
        generation++;
        nets = new Map ();
        $("networks").replaceChildren ();
        showLogin ("Token required: enter the registry's admin token (registry.admin_token).", "required");
    });
    start ();
}) ();
