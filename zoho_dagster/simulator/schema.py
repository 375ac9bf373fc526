"""Module and field metadata: what `/settings/modules` and `/settings/fields` describe and records carry.

Field shapes follow docs/zoho-crm-api.md §3.3 (data_type → json_type → JSON value). Leads deliberately has
more than 50 fields so that clients must split `fields` into batches (docs/zoho-crm-api.md §7.2).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property

from .currency import ACTIVE_CODES

JSON_TYPES: dict[str, str] = {
    "text": "string",
    "textarea": "string",
    "email": "string",
    "phone": "string",
    "website": "string",
    "picklist": "string",
    "profileimage": "string",
    "autonumber": "string",
    "bigint": "string",
    "integer": "integer",
    "double": "double",
    "currency": "double",
    "percent": "double",
    "decimal": "double",
    "boolean": "boolean",
    "date": "string",
    "datetime": "string",
    "lookup": "jsonobject",
    "ownerlookup": "jsonobject",
    "userlookup": "jsonobject",
    "multiselectpicklist": "jsonarray",
    "subform": "jsonarray",
    "multiselectlookup": "jsonarray",
    "multiuserlookup": "jsonarray",
    "layout": "jsonobject",
}

CHILD_TYPES = frozenset({"subform", "multiselectlookup", "multiuserlookup"})
"""Field types whose values are other modules' rows: only a single-record read carries them
(docs/zoho-crm-api.md §2.5, §7.8)."""

COMPUTED_TYPES = frozenset({"formula", "rollup_summary"})
"""Field types Zoho computes; their values change without a new Modified_Time (docs/zoho-crm-api.md §3.3)."""

REF_TYPES = frozenset({"lookup", "ownerlookup", "userlookup", "layout"})
"""Field types whose value is an object with an ``id``: COQL selects them as ``{"id": …}`` only
(docs/zoho-crm-api.md §3.8) and a Bulk Read cell holds the id only (§4.1)."""

RICH_TEXT_LIMIT = 500
"""Get Records cuts rich-text values to this many characters (docs/zoho-crm-api.md §2.5)."""

MULTI_CURRENCY_FIELDS = ("Currency", "Exchange_Rate")
"""The fields a multi-currency org adds to every record module holding currency fields (docs/zoho-crm-api.md
§3.10, §5); absent from metadata and records while multi-currency is off."""


@dataclass(frozen=True)
class FieldSpec:
    """One field; `gen` names the value generator (defaults to one per data_type)."""

    api_name: str
    data_type: str
    gen: str = ""
    picklist: tuple[str, ...] = ()
    lookup: str = ""
    read_only: bool = False
    null_rate: float = 0.0
    return_type: str = ""
    expression: str = ""
    custom_field: bool | None = None
    rich_text: bool = False
    """A multi-line field of textarea type ``rich_text`` (HTML): cut to 500 characters in list answers."""
    unused: bool = False
    """Removed from every layout: listed by `/settings/fields` only with ``type=all|unused`` (§3.3)."""

    @property
    def custom(self) -> bool:
        if self.custom_field is not None:
            return self.custom_field
        return self.api_name.endswith("__c")

    @property
    def json_type(self) -> str:
        # Tag: field metadata claims text/string although records carry an array (docs/zoho-crm-api.md §3.3,
        # §7.11). Formula and rollup fields take the JSON type of their return type (§3.3).
        if self.data_type in COMPUTED_TYPES:
            return JSON_TYPES.get(self.return_type, "string")
        return JSON_TYPES.get(self.data_type, "string")

    @property
    def label(self) -> str:
        return self.api_name.removesuffix("__c").removesuffix("__s").replace("_", " ")


@dataclass(frozen=True)
class ModuleSpec:
    """One module; `scale` is its size relative to `--records` (the Leads count)."""

    api_name: str
    number: int
    scale: float
    fields: tuple[FieldSpec, ...]
    module_name: str = ""
    singular: str = ""
    generated_type: str = "default"
    name_field: str = "Name"
    minimum: int = 5
    # Subform and linking modules (generated_type subform/linking): the parent module, the parent's field that
    # holds the rows, the row field pointing back at the parent (`Parent_Id`, or `Deal` for a linking module)
    # and, for a linking module, the field and module on the other side (docs/zoho-crm-api.md §7.8).
    parent: str = ""
    parent_field: str = ""
    link_field: str = ""
    connected_field: str = ""
    connected_module: str = ""
    scope: str = ""
    """The lower-case name in ``ZohoCRM.modules.{name}.READ`` when it is not the API name in lower case."""
    by_name: dict[str, FieldSpec] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.by_name.update({f.api_name: f for f in self.fields})

    @property
    def plural(self) -> str:
        return self.module_name or self.api_name

    @property
    def scope_name(self) -> str:
        """The lower-case name in `ZohoCRM.modules.{name}.READ` (docs/zoho-crm-api.md §1.8)."""
        if self.parent:
            # UNCONFIRMED which scope reads a subform or linking module (docs/zoho-crm-api.md §7.8); strict:
            # the parent module's, the one that reads the rows inside the parent.
            return MODULES_BY_NAME[self.parent].scope_name
        if self.scope:
            return self.scope
        return "custom" if self.generated_type == "custom" else self.api_name.lower()

    @property
    def has_layouts(self) -> bool:
        """Whether the module has layouts (a `Layout` field, `/settings/layouts`): every record module but
        Notes (docs/zoho-crm-api.md §3.11)."""
        return "Layout" in self.by_name

    @cached_property
    def rich_fields(self) -> frozenset[str]:
        return frozenset(f.api_name for f in self.fields if f.rich_text)

    @cached_property
    def unused_fields(self) -> frozenset[str]:
        return frozenset(f.api_name for f in self.fields if f.unused)

    @cached_property
    def has_currency(self) -> bool:
        """Whether multi-currency adds `Currency` and `Exchange_Rate` to this module."""
        return MULTI_CURRENCY_FIELDS[0] in self.by_name

    @cached_property
    def child_fields(self) -> tuple[FieldSpec, ...]:
        """The fields holding other modules' rows (subform, multi-select and multi-user lookups)."""
        return tuple(f for f in self.fields if f.data_type in CHILD_TYPES)

    @cached_property
    def computed_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.data_type in COMPUTED_TYPES)


F = FieldSpec

INDUSTRIES = (
    "Service Provider",
    "Data/Telecom OEM",
    "ERP",
    "Government/Military",
    "Large Enterprise",
    "Management/ISV",
    "Manufacturing",
    "Non-management ISV",
    "Optical Networking",
    "Storage Equipment",
)
LEAD_SOURCES = (
    "Advertisement",
    "Cold Call",
    "Employee Referral",
    "External Referral",
    "Online Store",
    "Partner",
    "Public Relations",
    "Sales Email Alias",
    "Seminar Partner",
    "Trade Show",
    "Web Download",
)
LEAD_STATUSES = (
    "Attempted to Contact",
    "Contact in Future",
    "Contacted",
    "Junk Lead",
    "Lost Lead",
    "Not Contacted",
    "Pre-Qualified",
    "Not Qualified",
)
RATINGS = ("Acquired", "Active", "Market Failed", "Project Cancelled", "Shut Down")
SALUTATIONS = ("Mr.", "Mrs.", "Ms.", "Dr.", "Prof.")
STAGES = (
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
PRODUCTS = ("CRM", "Desk", "Books", "Analytics", "Campaigns", "Projects", "People", "Sign")
LANGUAGES = ("English", "German", "French", "Spanish", "Japanese", "Hindi", "Arabic", "Portuguese")
REGION_PICK = ("North America", "EMEA", "APAC", "LATAM", "Middle East")

SYSTEM_FIELDS: tuple[FieldSpec, ...] = (
    F("Owner", "ownerlookup", "owner"),
    F("Created_By", "ownerlookup", "owner", read_only=True),
    F("Modified_By", "ownerlookup", "owner", read_only=True),
    F("Created_Time", "datetime", "created", read_only=True),
    F("Modified_Time", "datetime", "modified", read_only=True),
    F("Tag", "text", "tag", read_only=True),
)

# A legal but awkward custom field API name (Zoho allows long names with digits and underscores).
AWKWARD_FIELD = "Preferred_Contact_Window_For_Quarterly_Business_Review_2024__c"

LEADS_FIELDS: tuple[FieldSpec, ...] = (
    F("First_Name", "text", "first_name"),
    F("Last_Name", "text", "last_name"),
    F("Full_Name", "text", "full_name", read_only=True),
    F("Salutation", "picklist", picklist=SALUTATIONS),
    F("Company", "text", "company"),
    F("Email", "email", "email"),
    F("Secondary_Email", "email", "email2", null_rate=0.7),
    F("Phone", "phone", "phone"),
    F("Mobile", "phone", "phone", null_rate=0.3),
    F("Fax", "phone", "phone", null_rate=0.8),
    F("Website", "website", "website"),
    F("Designation", "text", "title"),
    F("Industry", "picklist", picklist=INDUSTRIES),
    F("Lead_Source", "picklist", picklist=LEAD_SOURCES),
    F("Lead_Status", "picklist", picklist=LEAD_STATUSES),
    F("Rating", "picklist", picklist=RATINGS, null_rate=0.4),
    F("No_of_Employees", "integer", null_rate=0.2),
    F("Annual_Revenue", "currency", null_rate=0.2),
    F("Street", "text", "street"),
    F("City", "text", "city"),
    F("State", "text", "state"),
    F("Zip_Code", "text", "zip"),
    F("Country", "text", "country"),
    F("Description", "textarea", "sentence", null_rate=0.5),
    F("Email_Opt_Out", "boolean"),
    F("Skype_ID", "text", "handle", null_rate=0.6),
    F("Twitter", "text", "handle", null_rate=0.6),
    F("Record_Image", "profileimage", "hash", null_rate=0.7),
    F("Last_Activity_Time", "datetime", "activity", read_only=True),
    F("Converted__s", "boolean", "false", read_only=True),
    F("Converted_Date_Time", "datetime", "null", read_only=True),
    F("Record_Status__s", "picklist", "available", picklist=("Available", "Draft"), read_only=True),
    F("Enrich_Status__s", "picklist", "null", picklist=("Available", "Enriched"), read_only=True),
    F("Last_Enriched_Time__s", "datetime", "null", read_only=True),
    F("Unsubscribed_Mode", "picklist", "null", picklist=("Manual", "Unsubscribe Link", "Consent Form")),
    F("Unsubscribed_Time", "datetime", "null"),
    F("Lead_Score__c", "integer"),
    F("Budget__c", "currency", null_rate=0.3),
    F("Discount_Rate__c", "percent"),
    F("Conversion_Probability__c", "double"),
    F("Is_Partner__c", "boolean"),
    F("Follow_Up_Date__c", "date"),
    F("Last_Demo_Time__c", "datetime", "activity", null_rate=0.3),
    F("Products_Of_Interest__c", "multiselectpicklist", picklist=PRODUCTS),
    F("Preferred_Language__c", "picklist", picklist=LANGUAGES),
    F("Internal_Notes__c", "textarea", "sentence", null_rate=0.5),
    F("LinkedIn_Profile__c", "website", "website", null_rate=0.4),
    F("Alt_Phone__c", "phone", "phone", null_rate=0.5),
    F("Billing_Email__c", "email", "email", null_rate=0.4),
    F("Referral_Account__c", "lookup", lookup="Accounts", null_rate=0.5),
    F("Account_Manager__c", "userlookup", "owner", null_rate=0.3),
    F("External_Ref__c", "bigint"),
    F("Lead_Number__c", "autonumber", "autonumber", read_only=True),
    F("Region__c", "picklist", picklist=REGION_PICK),
    F("Seats__c", "integer"),
    F("ARR__c", "currency"),
    F("Churn_Risk__c", "percent", null_rate=0.3),
    F("NPS__c", "integer", null_rate=0.4),
    F("Verified__c", "boolean"),
    F("Trial_Start__c", "date", null_rate=0.5),
    F("Trial_End__c", "date", null_rate=0.5),
    F("Source_Campaign__c", "lookup", lookup="Campaigns", null_rate=0.5),
    F("Interests__c", "multiselectpicklist", picklist=LANGUAGES, null_rate=0.3),
    F("Comment__c", "text", "sentence", null_rate=0.5),
    F("Weight_Kg__c", "decimal", null_rate=0.5),
    F(AWKWARD_FIELD, "text", "window", null_rate=0.2),
)

DAYS_OPEN = FieldSpec(
    "Days_Open__c",
    "formula",
    "null",
    read_only=True,
    return_type="double",
    expression="Datecomp(Now(), Created_Time) / 1440",
)
"""Whole days since Created_Time: moves with the clock, not with Modified_Time (docs/zoho-crm-api.md §3.3)."""

ORDER_STATUSES = ("Created", "Approved", "Delivered", "Cancelled")
CARRIERS = ("FedEx", "UPS", "USPS", "DHL", "BlueDart")

PERSON = (
    F("First_Name", "text", "first_name"),
    F("Last_Name", "text", "last_name"),
    F("Full_Name", "text", "full_name", read_only=True),
    F("Email", "email", "email"),
    F("Phone", "phone", "phone"),
)


LAYOUT_FIELD = F("Layout", "layout", "layout", read_only=True, custom_field=False)
"""The record's layout, ``{"name", "id"}`` (docs/zoho-crm-api.md §3.3, §3.11); every module with layouts."""
CURRENCY_FIELDS = (
    F("Currency", "picklist", "currency_code", picklist=ACTIVE_CODES, custom_field=False),
    F("Exchange_Rate", "double", "exchange_rate", custom_field=False),
)
"""A multi-currency org's two fields on every module holding currency fields (docs/zoho-crm-api.md §3.10)."""
RICH_TEXT_FIELD = F("Rich_Description__c", "textarea", "rich_html", null_rate=0.0, rich_text=True)
"""Leads' rich-text field: HTML, often longer than the 500 characters a list answer carries (§2.5)."""
UNUSED_FIELD = F("Legacy_Score__c", "integer", "null", unused=True)
"""A custom Leads field removed from every layout: only `/settings/fields?type=all|unused` lists it (§3.3)."""


def _with_extras(spec: ModuleSpec) -> ModuleSpec:
    """The fields every record module gains after its seeded ones: Leads' rich-text and unused fields, the
    multi-currency pair where the module holds currency fields, and `Layout` (Notes has no layouts). They are
    appended and draw nothing from a record's generator: every seeded value and field id stays as it was."""
    extra: list[FieldSpec] = []
    if spec.api_name == "Leads":
        extra += [RICH_TEXT_FIELD, UNUSED_FIELD]
    if any("currency" in (f.data_type, f.return_type) for f in spec.fields):
        extra += CURRENCY_FIELDS
    if spec.api_name != "Notes":
        extra.append(LAYOUT_FIELD)
    return dataclasses.replace(spec, fields=(*spec.fields, *extra), by_name={})


def _module_list() -> tuple[ModuleSpec, ...]:
    return tuple(_with_extras(spec) for spec in _seeded_modules())


def _seeded_modules() -> tuple[ModuleSpec, ...]:
    s = SYSTEM_FIELDS
    return (
        ModuleSpec("Leads", 1, 1.0, (*s, *LEADS_FIELDS), singular="Lead", name_field="Full_Name"),
        ModuleSpec(
            "Contacts",
            2,
            1.0,
            (
                *s,
                *PERSON,
                F("Account_Name", "lookup", lookup="Accounts"),
                F("Title", "text", "title"),
                F("Department", "text", "word"),
                F("Mailing_City", "text", "city"),
                F("Mailing_Country", "text", "country"),
                F("Date_of_Birth", "date", null_rate=0.5),
                F("Lead_Source", "picklist", picklist=LEAD_SOURCES),
                F("Email_Opt_Out", "boolean"),
                F("Languages__c", "multiselectpicklist", picklist=LANGUAGES),
            ),
            singular="Contact",
            name_field="Full_Name",
        ),
        ModuleSpec(
            "Accounts",
            3,
            0.9,
            (
                *s,
                F("Account_Name", "text", "company"),
                F("Website", "website", "website"),
                F("Phone", "phone", "phone"),
                F("Industry", "picklist", picklist=INDUSTRIES),
                F("Employees", "integer"),
                F("Annual_Revenue", "currency"),
                F("Billing_City", "text", "city"),
                F("Billing_Country", "text", "country"),
                F("Account_Number", "bigint"),
                F("Rating", "picklist", picklist=RATINGS, null_rate=0.4),
                F("Description", "textarea", "sentence"),
                F("Total_Deal_Amount__c", "rollup_summary", "null", read_only=True, return_type="currency"),
            ),
            singular="Account",
            name_field="Account_Name",
        ),
        ModuleSpec(
            "Deals",
            4,
            0.9,
            (
                *s,
                F("Deal_Name", "text", "deal"),
                F("Amount", "currency"),
                F("Stage", "picklist", picklist=STAGES),
                F("Probability", "integer"),
                F("Closing_Date", "date"),
                F("Account_Name", "lookup", lookup="Accounts"),
                F("Contact_Name", "lookup", lookup="Contacts"),
                F("Lead_Source", "picklist", picklist=LEAD_SOURCES),
                F("Expected_Revenue", "currency"),
                F("Campaign_Source", "lookup", lookup="Campaigns", null_rate=0.6),
                F("Products__c", "multiselectpicklist", picklist=PRODUCTS),
                # Added after the seeded fields and drawing nothing from the record's generator, so the values
                # of every field above stay what they were (docs/zoho-crm-api.md §3.3, §7.8).
                F(
                    "Partner_Accounts",
                    "multiselectlookup",
                    "null",
                    lookup="Deals_X_Accounts",
                    custom_field=True,
                ),
                F("Deal_Team", "multiuserlookup", "null", lookup="Deals_X_Users", custom_field=True),
                F("Deal_Competitors", "subform", "null", lookup="Deal_Competitors", custom_field=True),
                DAYS_OPEN,
            ),
            singular="Deal",
            name_field="Deal_Name",
        ),
        ModuleSpec(
            "Tasks",
            5,
            0.4,
            (
                *s,
                F("Subject", "text", "sentence"),
                F("Due_Date", "date"),
                F("Status", "picklist", picklist=("Not Started", "In Progress", "Completed", "Deferred")),
                F("Priority", "picklist", picklist=("High", "Highest", "Low", "Lowest", "Normal")),
                F("What_Id", "lookup", lookup="Deals", null_rate=0.3),
                F("Description", "textarea", "sentence"),
            ),
            singular="Task",
            name_field="Subject",
        ),
        ModuleSpec(
            "Events",
            6,
            0.2,
            (
                *s,
                F("Event_Title", "text", "sentence"),
                F("Start_DateTime", "datetime", "activity"),
                F("End_DateTime", "datetime", "activity"),
                F("Venue", "text", "city"),
                F("All_day", "boolean"),
            ),
            module_name="Meetings",
            singular="Meeting",
            name_field="Event_Title",
        ),
        ModuleSpec(
            "Calls",
            7,
            0.2,
            (
                *s,
                F("Subject", "text", "sentence"),
                F("Call_Start_Time", "datetime", "activity"),
                F("Call_Duration_in_seconds", "integer"),
                F("Call_Type", "picklist", picklist=("Inbound", "Outbound", "Missed")),
            ),
            singular="Call",
            name_field="Subject",
        ),
        ModuleSpec(
            "Campaigns",
            8,
            0.02,
            (
                *s,
                F("Campaign_Name", "text", "campaign"),
                F("Type", "picklist", picklist=("Webinar", "Trade Show", "Email", "Advertisement")),
                F("Status", "picklist", picklist=("Planning", "Active", "Inactive", "Complete")),
                F("Start_Date", "date"),
                F("Budgeted_Cost", "currency"),
            ),
            singular="Campaign",
            name_field="Campaign_Name",
        ),
        ModuleSpec(
            "Products",
            9,
            0.04,
            (
                *s,
                F("Product_Name", "text", "product"),
                F("Product_Code", "text", "code"),
                F("Unit_Price", "currency"),
                F("Qty_in_Stock", "double"),
                F("Product_Active", "boolean"),
            ),
            singular="Product",
            name_field="Product_Name",
        ),
        ModuleSpec(
            "Quotes",
            10,
            0.1,
            (
                *s,
                F("Subject", "text", "sentence"),
                F(
                    "Quote_Stage",
                    "picklist",
                    picklist=(
                        "Draft",
                        "Negotiation",
                        "Delivered",
                        "On Hold",
                        "Confirmed",
                        "Closed Won",
                        "Closed Lost",
                    ),
                ),
                F("Valid_Till", "date"),
                F("Grand_Total", "currency"),
                F("Deal_Name", "lookup", lookup="Deals"),
                F("Quoted_Items", "subform", "null", lookup="Quoted_Items"),
                DAYS_OPEN,
                F(
                    "Validity__c",
                    "formula",
                    "null",
                    read_only=True,
                    return_type="text",
                    expression='If(Valid_Till < Today(), "Expired", "Valid")',
                ),
            ),
            singular="Quote",
            name_field="Subject",
        ),
        ModuleSpec(
            "Vendors",
            11,
            0.016,
            (
                *s,
                F("Vendor_Name", "text", "company"),
                F("Email", "email", "email"),
                F("Phone", "phone", "phone"),
                F("Website", "website", "website"),
            ),
            singular="Vendor",
            name_field="Vendor_Name",
        ),
        ModuleSpec(
            "Notes",
            12,
            0.3,
            (
                *s,
                F("Note_Title", "text", "sentence"),
                F("Note_Content", "textarea", "sentence"),
                F("Parent_Id", "lookup", lookup="Leads"),
            ),
            singular="Note",
            name_field="Note_Title",
        ),
        ModuleSpec(
            "Vehicles",
            13,
            0.1,
            (
                *s,
                F("Name", "text", "vehicle"),
                F("VIN__c", "text", "code"),
                F("Model_Year__c", "integer"),
                F("Mileage__c", "double"),
                F("Purchase_Date__c", "date"),
                F("Owner_Contact__c", "lookup", lookup="Contacts"),
                F(
                    "Features__c",
                    "multiselectpicklist",
                    picklist=("GPS", "Sunroof", "Heated Seats", "Tow Hitch"),
                ),
            ),
            module_name="CustomModule3",
            singular="Vehicle",
            generated_type="custom",
            name_field="Name",
        ),
        *_inventory_and_service_modules(),
        *_booking_modules(),
    )


def _booking_modules() -> tuple[ModuleSpec, ...]:
    """`Appointments__s` and `Services__s`, the standard modules of Zoho's appointment booking
    (docs/zoho-crm-api.md §3.1): records modules like the others (fields of the simulator's own plausible
    choice); scopes `ZohoCRM.modules.appointments.READ` and `ZohoCRM.modules.services.READ`."""
    s = SYSTEM_FIELDS
    return (
        ModuleSpec(
            "Appointments__s",
            28,
            0.04,
            (
                *s,
                F("Appointment_Name", "text", "sentence"),
                F("Appointment_Start_Time", "datetime", "activity"),
                F("Duration", "integer"),
                F("Status", "picklist", picklist=("Upcoming", "In Progress", "Completed", "Cancelled")),
                F("Location", "picklist", picklist=("Business Address", "Customer Address", "Other Address")),
                F("Service_Name", "lookup", lookup="Services__s"),
                F("Appointment_For", "lookup", lookup="Contacts"),
                F("Remarks", "textarea", "sentence", null_rate=0.5),
            ),
            module_name="Appointments",
            singular="Appointment",
            name_field="Appointment_Name",
            scope="appointments",
        ),
        ModuleSpec(
            "Services__s",
            29,
            0.01,
            (
                *s,
                F("Service_Name", "text", "service"),
                F("Price", "currency"),
                F("Duration", "integer"),
                F("Status", "picklist", picklist=("Active", "Inactive")),
                F("Location", "picklist", picklist=("Business Address", "Customer Address")),
                F("Description", "textarea", "sentence", null_rate=0.5),
            ),
            module_name="Services",
            singular="Service",
            name_field="Service_Name",
            scope="services",
        ),
    )


def _inventory_and_service_modules() -> tuple[ModuleSpec, ...]:
    """The standard modules of docs/zoho-crm-api.md §3.1 beyond the twelve: numbered after the seeded ones so
    that no existing id moves; each inventory module holds its line items in a subform field (§7.8)."""
    s = SYSTEM_FIELDS
    money = (
        F("Sub_Total", "currency"),
        F("Discount", "currency", null_rate=0.5),
        F("Tax", "currency"),
        F("Grand_Total", "currency"),
    )
    return (
        ModuleSpec(
            "Invoices",
            14,
            0.06,
            (
                *s,
                F("Subject", "text", "sentence"),
                F("Invoice_Number", "autonumber", "autonumber", read_only=True),
                F("Invoice_Date", "date"),
                F("Due_Date", "date"),
                F("Status", "picklist", picklist=ORDER_STATUSES),
                F("Account_Name", "lookup", lookup="Accounts"),
                F("Contact_Name", "lookup", lookup="Contacts", null_rate=0.3),
                F("Deal_Name", "lookup", lookup="Deals", null_rate=0.3),
                F("Sales_Order", "lookup", lookup="Sales_Orders", null_rate=0.4),
                *money,
                F("Invoiced_Items", "subform", "null", lookup="Invoiced_Items"),
            ),
            singular="Invoice",
            name_field="Subject",
        ),
        ModuleSpec(
            "Sales_Orders",
            15,
            0.06,
            (
                *s,
                F("Subject", "text", "sentence"),
                F("SO_Number", "autonumber", "autonumber", read_only=True),
                F("Status", "picklist", picklist=ORDER_STATUSES),
                F("Due_Date", "date"),
                F("Carrier", "picklist", picklist=CARRIERS),
                F("Account_Name", "lookup", lookup="Accounts"),
                F("Contact_Name", "lookup", lookup="Contacts", null_rate=0.3),
                F("Deal_Name", "lookup", lookup="Deals", null_rate=0.3),
                F("Quote_Name", "lookup", lookup="Quotes", null_rate=0.5),
                *money,
                F("Ordered_Items", "subform", "null", lookup="Ordered_Items"),
            ),
            module_name="SalesOrders",
            singular="Sales Order",
            name_field="Subject",
        ),
        ModuleSpec(
            "Purchase_Orders",
            16,
            0.03,
            (
                *s,
                F("Subject", "text", "sentence"),
                F("PO_Number", "text", "code"),
                F("PO_Date", "date"),
                F("Status", "picklist", picklist=ORDER_STATUSES),
                F("Carrier", "picklist", picklist=CARRIERS),
                F("Vendor_Name", "lookup", lookup="Vendors"),
                F("Contact_Name", "lookup", lookup="Contacts", null_rate=0.5),
                *money,
                F("Purchased_Items", "subform", "null", lookup="Purchased_Items"),
            ),
            module_name="PurchaseOrders",
            singular="Purchase Order",
            name_field="Subject",
        ),
        ModuleSpec(
            "Price_Books",
            17,
            0.008,
            (
                *s,
                F("Price_Book_Name", "text", "price_book"),
                F("Active", "boolean"),
                F("Pricing_Model", "picklist", picklist=("Flat", "Differential")),
                F("Description", "textarea", "sentence", null_rate=0.5),
            ),
            module_name="PriceBooks",
            singular="Price Book",
            name_field="Price_Book_Name",
        ),
        ModuleSpec(
            "Cases",
            18,
            0.08,
            (
                *s,
                F("Subject", "text", "sentence"),
                F("Case_Number", "autonumber", "autonumber", read_only=True),
                F("Status", "picklist", picklist=("New", "On Hold", "Escalated", "Closed")),
                F("Priority", "picklist", picklist=("High", "Medium", "Low")),
                F("Case_Origin", "picklist", picklist=("Email", "Phone", "Web")),
                F("Type", "picklist", picklist=("Question", "Problem", "Feature Request")),
                F("Account_Name", "lookup", lookup="Accounts", null_rate=0.2),
                F("Related_To", "lookup", lookup="Contacts", null_rate=0.2),
                F("Product_Name", "lookup", lookup="Products", null_rate=0.4),
                F("Description", "textarea", "sentence"),
            ),
            singular="Case",
            name_field="Subject",
        ),
        ModuleSpec(
            "Solutions",
            19,
            0.02,
            (
                *s,
                F("Solution_Title", "text", "sentence"),
                F("Solution_Number", "autonumber", "autonumber", read_only=True),
                F("Status", "picklist", picklist=("Draft", "Reviewed", "Published")),
                F("Product_Name", "lookup", lookup="Products", null_rate=0.3),
                F("Question", "textarea", "sentence"),
                F("Answer", "textarea", "sentence"),
                F("Published", "boolean"),
            ),
            singular="Solution",
            name_field="Solution_Title",
        ),
    )


LINE_ITEM_FIELDS: tuple[FieldSpec, ...] = (
    F("Product_Name", "lookup", lookup="Products"),
    F("Quantity", "double"),
    F("List_Price", "currency"),
    F("Discount", "currency"),
    F("Tax", "currency"),
    F("Total", "currency", read_only=True),
    F("Net_Total", "currency", read_only=True),
    F("Description", "textarea"),
    F("Sequence_Number", "integer"),
)
"""The row fields of Zoho's inventory line items (docs/zoho-crm-api.md §7.8)."""


def _child_module_list() -> tuple[ModuleSpec, ...]:
    """Subform and linking modules: listed by `/settings/modules`, described by `/settings/fields`, read with
    `GET /{module}` and COQL; their rows live inside a parent record (docs/zoho-crm-api.md §7.8)."""
    items = (
        ("Quoted_Items", 20, "Quotes", "Quoted Item"),
        ("Ordered_Items", 21, "Sales_Orders", "Ordered Item"),
        ("Invoiced_Items", 22, "Invoices", "Invoiced Item"),
        ("Purchased_Items", 23, "Purchase_Orders", "Purchased Item"),
    )
    subforms = [
        ModuleSpec(
            name,
            number,
            0.0,
            (*LINE_ITEM_FIELDS, F("Parent_Id", "lookup", lookup=parent)),
            singular=singular,
            generated_type="subform",
            parent=parent,
            parent_field=name,
            link_field="Parent_Id",
        )
        for name, number, parent, singular in items
    ]
    competitors = ModuleSpec(
        "Deal_Competitors",
        24,
        0.0,
        (
            F("Competitor_Name", "text", custom_field=True),
            F("Strength", "picklist", picklist=("Strong", "Moderate", "Weak"), custom_field=True),
            F("Threat_Level", "integer", custom_field=True),
            F("Parent_Id", "lookup", lookup="Deals"),
        ),
        singular="Deal Competitor",
        generated_type="subform",
        parent="Deals",
        parent_field="Deal_Competitors",
        link_field="Parent_Id",
    )
    partners = ModuleSpec(
        "Deals_X_Accounts",
        25,
        0.0,
        (F("Deal", "lookup", lookup="Deals"), F("Partner_Account", "lookup", lookup="Accounts")),
        singular="Deals X Accounts",
        generated_type="linking",
        parent="Deals",
        parent_field="Partner_Accounts",
        link_field="Deal",
        connected_field="Partner_Account",
        connected_module="Accounts",
    )
    team = ModuleSpec(
        "Deals_X_Users",
        26,
        0.0,
        (F("Deal", "lookup", lookup="Deals"), F("Team_Member", "userlookup")),
        singular="Deals X Users",
        generated_type="linking",
        parent="Deals",
        parent_field="Deal_Team",
        link_field="Deal",
        connected_field="Team_Member",
        connected_module="users",
    )
    return (*subforms, competitors, partners, team)


MODULES: tuple[ModuleSpec, ...] = _module_list()
MODULES_BY_NAME: dict[str, ModuleSpec] = {m.api_name: m for m in MODULES}
CHILD_MODULES: tuple[ModuleSpec, ...] = _child_module_list()
"""Subform and linking modules; not record modules (no single-record read, count, deleted or Bulk Read)."""
CHILD_MODULES_BY_NAME: dict[str, ModuleSpec] = {m.api_name: m for m in CHILD_MODULES}
CHILD_OF_FIELD: dict[tuple[str, str], ModuleSpec] = {(m.parent, m.parent_field): m for m in CHILD_MODULES}
"""(parent module, parent field) → the subform or linking module holding that field's rows."""
STAGE_HISTORY_NUMBER = 27
"""The id space of Stage_History rows (ids are `prefix·10¹² + number·10¹⁰ + …`, like records)."""


LAYOUT_NUMBER = 95
"""The id space of layouts."""
LAYOUT_NAMES = ("Standard", "Partner")
"""Every module with layouts has two, spread over its records (about one record in five in the second)."""


def layout_id(prefix: int, spec: ModuleSpec, k: int) -> str:
    """The id of layout ``k`` (0 Standard, 1 Partner) of ``spec`` in `/settings/layouts` and records."""
    return str(int(prefix) * 10**12 + LAYOUT_NUMBER * 10**10 + 1001 + (spec.number * 8 + k) * 4)


def module_row_id(prefix: int, spec: ModuleSpec) -> str:
    """The module's `id` in `/settings/modules` (also its id inside lookups' `module` objects)."""
    return str(int(prefix) * 10**12 + spec.number * 10**4 + 125)


def field_id(prefix: int, spec: ModuleSpec, position: int) -> str:
    """The `id` of the field at ``position`` in ``spec.fields`` in `/settings/fields`."""
    return str(int(prefix) * 10**12 + spec.number * 10**8 + position + 1)


def module_spec(name: str) -> ModuleSpec | None:
    """A record module by exact API name: case-insensitive matching is UNCONFIRMED, so the strict choice is
    exact."""
    return MODULES_BY_NAME.get(name)


def any_module_spec(name: str) -> ModuleSpec | None:
    """A record, subform or linking module by exact API name."""
    return MODULES_BY_NAME.get(name) or CHILD_MODULES_BY_NAME.get(name)
