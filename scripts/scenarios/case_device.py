"""Case 12: a session continued from another device — an Entra session token (one `sessionId`)
replayed from a machine Entra does not know, on the same network as its owner.

Entra names the device of every sign-in (`deviceDetail`): a registered, managed laptop by its
`deviceId`; a machine it does not know by empty strings, which the engine reads as
`unregistered`. A browser session lives on one device; the same `sessionId` from another device
is its cookie or refresh token carried away (the theft Entra's token protection is built
against). The network checks see nothing when the thief sits behind the same egress.
"""

from case_mfa import TENANT, EntraUser
from common import CHROME_WIN, EDGE_WIN, OFFICE
from vendors import Place, entra_signin, uuid

# A second address of the office egress /24 (its guest network).
OFFICE_GUEST = Place(
    "198.51.100.87", OFFICE.city, OFFICE.state, OFFICE.country, OFFICE.postal, OFFICE.lat, OFFICE.lon,
    OFFICE.asn, OFFICE.as_org, OFFICE.isp, OFFICE.domain,
)
EDGE_NEXT = EDGE_WIN.raw.replace("Chrome/129.0.0.0", "Chrome/130.0.0.0").replace("Edg/129.0.0.0", "Edg/130.0.0.0")

APPS = [
    ("4765445b-32c6-49b0-83e6-1d93765276ca", "OfficeHome"),
    ("00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online"),
    ("00000003-0000-0ff1-ce00-000000000000", "Office 365 SharePoint Online"),
    ("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams"),
]


def key(session_id):
    return f"entra:{TENANT}:sid:{session_id}"


def sign_in(fx, clock, who, session_id, place, ua, device, *, app=0, browser="Edge 129.0.0", seed=""):
    rec = entra_signin(
        fx.at(clock), tenant=TENANT, user_id=who.id, upn=who.upn, display=who.display,
        session_id=session_id, ip=place.ip, asn=place.asn, city=place.city, state=place.state,
        country="US", ua=ua, device_os="Windows10", browser=browser, app=APPS[app % len(APPS)],
        device=device, seed=seed,
    )
    return fx.add(rec, key(session_id))


def attack(fx):
    fx.summary = (
        "Megan signs in on her managed laptop and works through the morning (Office, Exchange, "
        "SharePoint, Teams). At 10:05 her session (`sessionId`) signs in to Exchange from a "
        "machine Entra does not know, behind the office's own egress: her refresh token, carried "
        "off by an info-stealer and replayed from the guest network. Same /24, same AS, same "
        "country; only the device differs. A colleague works alongside."
    )
    megan = EntraUser("megan.bowen@northwind.example", "Megan Bowen")
    sid = uuid("entra-session", "megan", fx.day)
    laptop = ("3f9b2c71-6a4e-4d8b-a0c5-7e1d2f3a4b59", "MEGANB-LT01", "Azure AD joined")
    fx.who(key(sid), "megan.bowen on MEGANB-LT01; her session replayed from an unregistered machine")
    for i, clock in enumerate(["09:00:10", "09:04:42", "09:15:03", "09:32:18", "09:50:37"]):
        sign_in(fx, clock, megan, sid, OFFICE, EDGE_WIN.raw, laptop, app=i, seed=i)
    ev = sign_in(fx, "10:05:31", megan, sid, OFFICE_GUEST, CHROME_WIN.raw, None, app=1,
                 browser="Chrome 128.0.0", seed="thief")
    fx.fire(ev, "session continued from another device", "revoke session",
            "the session's device, learnt as MEGANB-LT01 from its first sign-ins (two in its first ten minutes), is now "
            "`unregistered`")
    sign_in(fx, "10:06:02", megan, sid, OFFICE_GUEST, CHROME_WIN.raw, None, app=2,
            browser="Chrome 128.0.0", seed="thief2")

    adele = EntraUser("adele.vance@northwind.example", "Adele Vance")
    sid2 = uuid("entra-session", "adele", fx.day)
    fx.who(key(sid2), "adele.vance on ADELEV-LT02 all morning")
    desk = ("8c1d4e2f-3b5a-4c6d-9e7f-0a1b2c3d4e5f", "ADELEV-LT02", "Azure AD joined")
    for i, clock in enumerate(["09:02:30", "09:20:11", "09:41:55", "10:03:12"]):
        sign_in(fx, clock, adele, sid2, OFFICE, EDGE_WIN.raw, desk, app=i, seed=f"a{i}")
    fx.quiet(key(sid2), "one device throughout")


def benign(fx):
    fx.summary = (
        "Device changes that are not theft: a session on a managed laptop whose Edge updates "
        "itself mid-morning and whose address moves inside the office /24; a contractor working "
        "all day from a personal machine Entra does not know (`unregistered` from the start); and "
        "a user on two registered devices, laptop and desktop, each with its own session."
    )
    megan = EntraUser("megan.bowen@northwind.example", "Megan Bowen")
    sid = uuid("entra-session", "megan-benign", fx.day)
    laptop = ("3f9b2c71-6a4e-4d8b-a0c5-7e1d2f3a4b59", "MEGANB-LT01", "Azure AD joined")
    fx.who(key(sid), "megan.bowen on MEGANB-LT01: an Edge update and a NAT move in the /24")
    for i, clock in enumerate(["09:00:10", "09:04:42", "09:15:03"]):
        sign_in(fx, clock, megan, sid, OFFICE, EDGE_WIN.raw, laptop, app=i, seed=i)
    for i, clock in enumerate(["10:12:40", "10:48:05", "11:30:22"]):
        sign_in(fx, clock, megan, sid, OFFICE_GUEST, EDGE_NEXT, laptop, app=i + 1, browser="Edge 130.0.0",
                seed=f"n{i}")
    fx.quiet(key(sid), "one device: a browser update and a new address inside the /24 are not a device")

    lynne = EntraUser("lynne.robbins@contoso-partner.example", "Lynne Robbins")
    sid2 = uuid("entra-session", "lynne", fx.day)
    fx.who(key(sid2), "lynne.robbins, a contractor, on a personal machine all day")
    for i, clock in enumerate(["08:45:00", "09:30:14", "11:02:40", "11:48:09"]):
        sign_in(fx, clock, lynne, sid2, OFFICE, CHROME_WIN.raw, None, app=i, browser="Chrome 128.0.0",
                seed=f"l{i}")
    fx.quiet(key(sid2), "`unregistered` from its first sign-in: the baseline, not a change")

    diego = EntraUser("diego.siciliani@northwind.example", "Diego Siciliani")
    laptop2 = ("5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d", "DIEGOS-LT03", "Azure AD joined")
    desktop = ("9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a", "DIEGOS-WS01", "Hybrid Azure AD joined")
    for name, device, clocks in [("laptop", laptop2, ["09:10:00", "09:40:31", "10:20:15"]),
                                 ("desktop", desktop, ["09:12:44", "09:55:02", "10:31:48"])]:
        sid3 = uuid("entra-session", "diego", name, fx.day)
        fx.who(key(sid3), f"diego.siciliani on {device[1]}")
        for i, clock in enumerate(clocks):
            sign_in(fx, clock, diego, sid3, OFFICE, EDGE_WIN.raw, device, app=i, seed=f"{name}{i}")
        fx.quiet(key(sid3), "each device has its own session")
