// Partner kinds by their translated names (staff.json, "partner_kinds"),
// shared by the console and the operator view; an unknown kind shows its code.
import { t } from "./i18n.js";

export function kindName(kind) {
  const key = `staff.partner_kinds.${kind}`;
  const name = t(key);
  return name === key ? kind : name;
}
