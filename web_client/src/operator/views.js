// The operator page's views, in the order of its navigation. A view is
// {id, labelKey, render(region, app), onOps?(app), leave?()}: render draws it
// into its region when chosen (and again when the language changes); onOps is
// called on every live push while it is shown; leave when another is chosen.
import { liveView } from "./live.js";

export const VIEWS = [liveView];
