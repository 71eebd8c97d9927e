/* Cell renderers for the case list grid. Rows may still be loading (no data yet). */
var dagcomponentfuncs = (window.dashAgGridComponentFunctions =
  window.dashAgGridComponentFunctions || {});

dagcomponentfuncs.StudyThumb = function (props) {
  if (!props.data) return null;
  return React.createElement("img", {
    src: "/api/v1/studies/" + props.data.id + "/preview/thumb.png",
    className: "thumb",
    loading: "lazy",
    alt: "",
  });
};

dagcomponentfuncs.StudyLink = function (props) {
  if (!props.data) return "…";
  return React.createElement(
    "a",
    { href: "/review?studies=" + props.data.id, className: "study-link" },
    props.value
  );
};

var STATUS_TEXT = {
  unreviewed: "Unreviewed",
  "in-review": "In review",
  approved: "Approved",
  rejected: "Rejected",
  "needs-edit": "Needs edit",
  "flagged-for-expert": "Flagged for expert",
};

dagcomponentfuncs.StatusChip = function (props) {
  if (!props.data) return null;
  return React.createElement(
    "span",
    { className: "badge status-" + props.value },
    STATUS_TEXT[props.value] || props.value
  );
};

/* Hovering a thumbnail shows the study's mosaic: axial slices from bottom to top. */
dagcomponentfuncs.MosaicTooltip = function (props) {
  if (!props.data) return null;
  return React.createElement(
    "div",
    { className: "mosaic-tooltip" },
    React.createElement("img", {
      src: "/api/v1/studies/" + props.data.id + "/preview/mosaic.png",
      alt: "",
      width: 384,
      onError: function (e) { e.target.style.display = "none"; },
    })
  );
};
