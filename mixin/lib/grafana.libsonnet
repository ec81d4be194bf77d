// The pieces of our Grafana dashboards: variables, panels, rows, and a
// dashboard that numbers and lays out its panels (left to right, a new
// line when the 24 columns are full).
local DS = { type: 'prometheus', uid: '${datasource}' };

{
  datasourceVariable():: {
    name: 'datasource',
    label: 'Data source',
    type: 'datasource',
    query: 'prometheus',
    hide: 0,
    refresh: 1,
    options: [],
  },

  // A query variable. No `current`: Grafana picks the first option (or All)
  // on load. No `allValue` without All (Grafana's schema has no null for it).
  queryVariable(name, label, query, allValue='.+', multi=true, includeAll=true):: {
    name: name,
    label: label,
    type: 'query',
    datasource: DS,
    query: { query: query, refId: 'PrometheusVariableQueryEditor-VariableQuery', qryType: 1 },
    refresh: 2,
    includeAll: includeAll,
    multi: multi,
    options: [],
    sort: 1,
    hide: 0,
  } + (if includeAll then { allValue: allValue } else {}),

  // A panel: `question` is the one it answers (its description), `exprs`
  // pairs of [query, legend].
  panel(title, question, exprs, unit='short', kind='timeseries', w=12, h=8, instant=false, options={}):: {
    type: kind,
    title: title,
    description: question,
    datasource: DS,
    gridPos: { h: h, w: w, x: 0, y: 0 },
    fieldConfig: { defaults: { unit: unit }, overrides: [] },
    options: options,
    targets: [
      {
        refId: std.char(65 + i),
        datasource: DS,
        expr: exprs[i][0],
        legendFormat: exprs[i][1],
        range: !instant,
        instant: instant,
      } + (if instant then { format: 'time_series' } else {})
      for i in std.range(0, std.length(exprs) - 1)
    ],
  },

  // A row header across the dashboard, above the panels that follow it.
  row(title):: {
    type: 'row',
    title: title,
    collapsed: false,
    panels: [],
    gridPos: { h: 1, w: 24, x: 0, y: 0 },
  },

  local layout(panels) = std.foldl(
    function(at, p)
      local w = p.gridPos.w;
      local h = p.gridPos.h;
      local wrap = at.x + w > 24;
      local x = if wrap then 0 else at.x;
      local y = if wrap then at.y + at.rowh else at.y;
      local rowh = if wrap then 0 else at.rowh;
      {
        x: x + w,
        y: y,
        rowh: std.max(rowh, h),
        out: at.out + [p { id: std.length(at.out) + 1, gridPos+: { x: x, y: y } }],
      },
    panels,
    { x: 0, y: 0, rowh: 0, out: [] }
  ).out,

  dashboard(config, uid, title, description, variables, panels):: {
    uid: uid,
    title: title,
    description: description,
    tags: config.dashboardTags,
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: config.dashboardRefresh,
    time: { from: config.dashboardTimeFrom, to: 'now' },
    timezone: config.dashboardTimezone,
    templating: { list: variables },
    annotations: { list: [] },
    links: [],
    panels: layout(panels),
  },
}
