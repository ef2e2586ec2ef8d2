// The Devices screen: a member whose phone is lost, broken or replaced
// adds a new device from one that still works, with a device invite
// (POST /v1/invites {"for": "device"}). The new device opens the invite's
// link (or scans its QR code), joins as the same member, and syncs the
// member's documents from the server.
import qrcode from "qrcode-generator";
import { ApiError, OfflineError } from "./api";
import type { App } from "./app";
import type { Screen } from "./screens";
import { field, h, when } from "./ui";

interface Invite {
  code: string;
  url: string;
  expires_at: string;
}

const SVG = "http://www.w3.org/2000/svg";

// qrSVG draws text as a QR code: one SVG path of dark modules, with the
// standard quiet zone of four modules, scaled by CSS.
export function qrSVG(text: string, label: string): SVGSVGElement {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const size = n + 8;
  let d = "";
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) if (qr.isDark(r, c)) d += `M${c + 4} ${r + 4}h1v1h-1z`;
  }
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("class", "qr");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("shape-rendering", "crispEdges");
  const bg = document.createElementNS(SVG, "rect");
  bg.setAttribute("width", String(size));
  bg.setAttribute("height", String(size));
  bg.setAttribute("fill", "#fff");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.append(bg, path);
  return svg;
}

export const devices: Screen = {
  title: "Devices",
  render(app: App) {
    const out = h("div", { id: "device-invite", "aria-live": "polite" });
    const err = h("p", { class: "alert", role: "alert" });
    const button = h(
      "button",
      {
        type: "button",
        onclick: async () => {
          err.textContent = "";
          button.disabled = true;
          try {
            const inv = await app.session!.call<Invite>("POST", "/v1/invites", { for: "device" });
            out.replaceChildren(...invite(inv));
          } catch (e) {
            err.textContent =
              e instanceof OfflineError
                ? "Making an invite needs the circle's server: connect this phone first."
                : "No invite made: " + (e instanceof ApiError || e instanceof Error ? e.message : String(e));
          } finally {
            button.disabled = false;
          }
        },
      },
      "Make a device invite",
    );
    return [
      h("h1", null, "Your devices"),
      h(
        "p",
        null,
        `Lost this phone's key, or got a new phone? From a device of yours that still works, make a device invite here and open its link on the new device (or scan its QR code there). The new device joins as you, ${app.device?.memberName ?? "the same member"}, with all your contributions.`,
      ),
      h("p", { class: "muted small" }, "An invite works once and expires. Anyone who has it can add a device to you: give it to nobody else."),
      button,
      err,
      out,
    ];
  },
};

function invite(inv: Invite): HTMLElement[] {
  const code = h("input", { readonly: true, value: inv.code, autocomplete: "off", spellcheck: "false" });
  return [
    h("h2", null, "Device invite"),
    h("div", { class: "qr-box" }, qrSVG(inv.url, "QR code of the device invite link")),
    field("Device invite code", code, "On the new device, open this circle's /join page and enter it, or use the link below."),
    h("p", null, h("a", { href: inv.url }, "Device invite link"), ": ", h("code", { class: "invite-link" }, inv.url)),
    h("p", { class: "meta" }, `Expires ${when(inv.expires_at)}.`),
  ];
}
