/** The report's inline stylesheet and script: the page loads nothing from anywhere. */

export const STYLE = `
:root{--fg:#1f2328;--muted:#59636e;--border:#d1d9e0;--soft:#f6f8fa;--crit:#cf222e;--warn:#9a6700;--info:#0969da;--ok:#1a7f37}
*{box-sizing:border-box}
body{margin:0;color:var(--fg);background:#fff;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","DejaVu Sans",sans-serif}
main{max-width:1320px;margin:0 auto;padding:20px 24px 60px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--border)}
h3{font-size:15px;margin:0}
a{color:var(--info);text-decoration:none}a:hover{text-decoration:underline}
code,.mono,table.ladder,td.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12.5px}
.muted{color:var(--muted)}
nav.toc{margin:8px 0 0;display:flex;gap:16px;flex-wrap:wrap}
.inputs{margin:10px 0 0;padding:0;list-style:none}.inputs li{margin:2px 0}
.warning{color:var(--warn)}.error{color:var(--crit)}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;margin-top:14px}
.tile{border:1px solid var(--border);border-radius:8px;padding:8px 12px;background:var(--soft)}
.tile .v{font-size:20px;font-weight:600}.tile .k{color:var(--muted);font-size:12px}
.tile.crit .v{color:var(--crit)}.tile.warn .v{color:var(--warn)}.tile.info .v{color:var(--info)}
.finding{border:1px solid var(--border);border-left:5px solid var(--info);border-radius:8px;padding:12px 16px;margin:12px 0;background:#fff}
.finding.sev-critical{border-left-color:var(--crit)}.finding.sev-warning{border-left-color:#d4a72c}
.finding header{display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}
.badge{display:inline-block;border-radius:12px;padding:0 9px;font-size:12px;font-weight:600;color:#fff;background:var(--info);text-transform:uppercase;letter-spacing:.03em}
.badge.sev-critical{background:var(--crit)}.badge.sev-warning{background:#bf8700}
.badge.accepted{background:#818b98;text-transform:none}
.detector{font-family:ui-monospace,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-weight:600}
.finding .title{font-weight:600}
.finding dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;margin:8px 0 0}
.finding dt{color:var(--muted)}.finding dd{margin:0}
.finding ul{margin:0;padding-left:18px}
.evidence{font-family:ui-monospace,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12.5px;word-break:break-word}
.none{padding:10px 14px;border:1px dashed var(--border);border-radius:8px;color:var(--muted)}
figure{margin:10px 0 18px}figcaption{color:var(--muted);font-size:12px}
svg.chart{width:100%;height:auto;display:block;background:#fff}
svg.chart text{font-size:11px;fill:#57606a}
svg.chart .panel-title{font-size:12px;font-weight:600;fill:var(--fg)}
svg.chart .axis-title{font-size:11px;fill:#818b98}
svg.chart .grid{stroke:#eef1f4;stroke-width:1}
svg.chart .frame{fill:none;stroke:#c9d1d9;stroke-width:1}
.series path,.legend path{fill:none;stroke-linejoin:round}
.s-data path{stroke:#1f6feb;stroke-width:2}
.s-retrans path{stroke:#cf222e;stroke-width:3.2}
.s-ack path{stroke:#1a7f37;stroke-width:1.4}
.s-window path{stroke:#c69026;stroke-width:1.2;stroke-dasharray:5 3}
.s-probe path{stroke:#e16f24;stroke-width:1.8}
.s-syn path{fill:#2da44e;stroke:#1a7f37}
.s-fin path{fill:#8250df;stroke:#6639ba}
.s-rst path{stroke:#cf222e;stroke-width:2.4}
.s-zero-window path{fill:#cf222e;stroke:#a40e26}
.s-dup-ack path{stroke:#0a7ea4;stroke-width:1.6}
.t-open path{stroke:#1f6feb;stroke-width:1.6}
.t-new-connections path{stroke:#1a7f37;stroke-width:1.6}
.t-retransmissions path{stroke:#bf8700;stroke-width:1.6}
.t-resets path{stroke:#cf222e;stroke-width:1.6}
.finding-span rect{fill:rgba(9,105,218,.06)}.finding-span.sev-critical rect{fill:rgba(207,34,46,.07)}.finding-span.sev-warning rect{fill:rgba(212,167,44,.10)}
svg.chart .finding-span text{font-size:10px;fill:#818b98}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;margin:4px 0 0 64px;font-size:12px;color:var(--muted)}
.legend-item{display:inline-flex;align-items:center;gap:5px}
.conversation{border:1px solid var(--border);border-radius:8px;padding:12px 16px;margin:14px 0}
.conversation .meta{color:var(--muted);font-size:13px;margin:2px 0 6px}
.conversation .named{margin:4px 0 8px;display:flex;gap:8px;flex-wrap:wrap}
.seq-panel{margin-top:6px}
details>summary{cursor:pointer;color:var(--info);margin-top:6px}
.scroll{overflow-x:auto}
table{border-collapse:collapse}
table.ladder{margin-top:6px;width:100%}
table.ladder th,table.ladder td{padding:1px 8px;text-align:right;white-space:nowrap;border-bottom:1px solid #f0f2f4}
table.ladder th:nth-child(3),table.ladder td:nth-child(3),table.ladder th:nth-child(4),table.ladder td:nth-child(4),table.ladder th:last-child,table.ladder td:last-child{text-align:left}
table.ladder td:last-child{white-space:normal}
table.ladder tr.s2c td{background:#f4f8ff}
table.ladder tr.gap td,table.ladder tr.idle td{text-align:center;color:var(--muted);font-style:italic;background:#fbfbfc}
.note{white-space:nowrap}.note.bad{color:var(--crit);font-weight:600}.note.warn{color:var(--warn)}.note.info{color:var(--muted)}
table.data{width:100%;font-size:12.5px}
table.data th,table.data td{padding:3px 7px;border-bottom:1px solid #eaeef2;text-align:left;white-space:nowrap}
table.data td.n,table.data th.n{text-align:right}
table.data thead th{position:sticky;top:0;background:var(--soft);border-bottom:1px solid var(--border)}
table.data tbody tr:hover{background:#f6f8fa}
table.data tr.flagged td:first-child{box-shadow:inset 3px 0 0 var(--crit)}
table.data td.findings{white-space:normal;max-width:170px}table.data .detector{font-size:11.5px;color:var(--crit);white-space:nowrap}
th button{all:unset;cursor:pointer;font-weight:600}
th button::after{content:" ⇅";color:#c5ccd3;font-weight:400;font-size:11px}
th[aria-sort=ascending] button::after{content:" ▲";color:var(--fg)}
th[aria-sort=descending] button::after{content:" ▼";color:var(--fg)}
.bad{color:var(--crit)}
.controls{margin:6px 0;font-size:13px;color:var(--muted)}
footer{margin-top:40px;color:var(--muted);font-size:12px}
@media print{details{display:block}details>summary{display:none}}
`;

/** Sorting the conversations table by a header, and its "flagged only" filter. */
export const SCRIPT = `
(function () {
  'use strict';
  function key(row, col) {
    var cell = row.cells[col];
    var v = cell.getAttribute('data-v');
    return v !== null ? v : cell.textContent;
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      var button = th.querySelector('button');
      if (!button) return;
      button.addEventListener('click', function () {
        var ascending = th.getAttribute('aria-sort') !== 'ascending';
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
        var numeric = th.getAttribute('data-type') === 'num';
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a, col), y = key(b, col);
          var c = numeric ? Number(x) - Number(y) : x.localeCompare(y);
          if (c === 0) c = Number(a.getAttribute('data-id')) - Number(b.getAttribute('data-id'));
          return ascending ? c : -c;
        });
        var fragment = document.createDocumentFragment();
        rows.forEach(function (row) { fragment.appendChild(row); });
        body.appendChild(fragment);
      });
    });
  });
  var only = document.getElementById('flagged-only');
  if (only) only.addEventListener('change', function () {
    Array.prototype.forEach.call(document.querySelectorAll('#conversations tbody tr'), function (row) {
      row.hidden = only.checked && !row.classList.contains('flagged');
    });
  });
})();
`;
