// The operator page's views, in the order of its navigation. A view is
// {id, labelKey, render(region, app), onOps?(app), leave?()}: render draws it
// into its region when chosen (and again when the language changes); onOps is
// called on every live push while it is shown; onPartnersChanged(app, data)
// on every `partners_changed` push while it is shown; leave when another is
// chosen.
import { liveView } from "./live.js";
import { statsView } from "./stats.js";
import { partnersView } from "./partners.js";
import { worklogView } from "./worklog.js";

export const VIEWS = [liveView, partnersView, statsView, worklogView];
