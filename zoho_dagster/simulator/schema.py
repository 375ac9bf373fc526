"""Module and field metadata: what `/settings/modules` and `/settings/fields` describe and records carry.

Field shapes follow docs/zoho-crm-api.md §3.3 (data_type → json_type → JSON value). Leads deliberately has
more than 50 fields so that clients must split `fields` into batches (docs/zoho-crm-api.md §7.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
}


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

    @property
    def custom(self) -> bool:
        return self.api_name.endswith("__c")

    @property
    def json_type(self) -> str:
        # Tag: field metadata claims text/string although records carry an array (docs/zoho-crm-api.md §3.3,
        # §7.11).
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
    by_name: dict[str, FieldSpec] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.by_name.update({f.api_name: f for f in self.fields})

    @property
    def plural(self) -> str:
        return self.module_name or self.api_name

    @property
    def scope_name(self) -> str:
        """The lower-case name in `ZohoCRM.modules.{name}.READ` (docs/zoho-crm-api.md §1.8)."""
        return "custom" if self.generated_type == "custom" else self.api_name.lower()


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

PERSON = (
    F("First_Name", "text", "first_name"),
    F("Last_Name", "text", "last_name"),
    F("Full_Name", "text", "full_name", read_only=True),
    F("Email", "email", "email"),
    F("Phone", "phone", "phone"),
)


def _module_list() -> tuple[ModuleSpec, ...]:
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
    )


MODULES: tuple[ModuleSpec, ...] = _module_list()
MODULES_BY_NAME: dict[str, ModuleSpec] = {m.api_name: m for m in MODULES}


def module_spec(name: str) -> ModuleSpec | None:
    """Exact API names only: case-insensitive matching is UNCONFIRMED, so the strict choice is exact."""
    return MODULES_BY_NAME.get(name)
