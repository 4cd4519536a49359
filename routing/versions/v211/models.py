"""Pydantic v2 models of every OCPI 2.1.1 object, class and enum.

Generated from the field tables of the OCPI 2.1.1 specification by
routing/versions/generate.py and checked against them by tests/test_versions_models.py.
Used at the translation boundary only: same-version traffic is relayed as received.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# DateTime: RFC 3339 in UTC; kept as the sender's string so relayed values do not change.
DateTime = Annotated[str, Field(max_length=35, pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")]


class OcpiModel(BaseModel):
    """Base of every OCPI 2.1.1 object: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


class AuthMethod(StrEnum):
    """AuthMethod enum (mod_cdrs.md)."""

    AUTH_REQUEST = "AUTH_REQUEST"
    WHITELIST = "WHITELIST"


class CdrDimensionType(StrEnum):
    """CdrDimensionType enum (mod_cdrs.md)."""

    ENERGY = "ENERGY"
    FLAT = "FLAT"
    MAX_CURRENT = "MAX_CURRENT"
    MIN_CURRENT = "MIN_CURRENT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class CommandResponseType(StrEnum):
    """CommandResponseType enum (mod_commands.md)."""

    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    ACCEPTED = "ACCEPTED"
    TIMEOUT = "TIMEOUT"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class CommandType(StrEnum):
    """CommandType enum (mod_commands.md)."""

    RESERVE_NOW = "RESERVE_NOW"
    START_SESSION = "START_SESSION"
    STOP_SESSION = "STOP_SESSION"
    UNLOCK_CONNECTOR = "UNLOCK_CONNECTOR"


class Capability(StrEnum):
    """Capability enum (mod_locations.md)."""

    CHARGING_PROFILE_CAPABLE = "CHARGING_PROFILE_CAPABLE"
    CREDIT_CARD_PAYABLE = "CREDIT_CARD_PAYABLE"
    REMOTE_START_STOP_CAPABLE = "REMOTE_START_STOP_CAPABLE"
    RESERVABLE = "RESERVABLE"
    RFID_READER = "RFID_READER"
    UNLOCK_CAPABLE = "UNLOCK_CAPABLE"


class ConnectorFormat(StrEnum):
    """ConnectorFormat enum (mod_locations.md)."""

    SOCKET = "SOCKET"
    CABLE = "CABLE"


class ConnectorType(StrEnum):
    """ConnectorType enum (mod_locations.md)."""

    CHADEMO = "CHADEMO"
    DOMESTIC_A = "DOMESTIC_A"
    DOMESTIC_B = "DOMESTIC_B"
    DOMESTIC_C = "DOMESTIC_C"
    DOMESTIC_D = "DOMESTIC_D"
    DOMESTIC_E = "DOMESTIC_E"
    DOMESTIC_F = "DOMESTIC_F"
    DOMESTIC_G = "DOMESTIC_G"
    DOMESTIC_H = "DOMESTIC_H"
    DOMESTIC_I = "DOMESTIC_I"
    DOMESTIC_J = "DOMESTIC_J"
    DOMESTIC_K = "DOMESTIC_K"
    DOMESTIC_L = "DOMESTIC_L"
    IEC_60309_2_single_16 = "IEC_60309_2_single_16"
    IEC_60309_2_three_16 = "IEC_60309_2_three_16"
    IEC_60309_2_three_32 = "IEC_60309_2_three_32"
    IEC_60309_2_three_64 = "IEC_60309_2_three_64"
    IEC_62196_T1 = "IEC_62196_T1"
    IEC_62196_T1_COMBO = "IEC_62196_T1_COMBO"
    IEC_62196_T2 = "IEC_62196_T2"
    IEC_62196_T2_COMBO = "IEC_62196_T2_COMBO"
    IEC_62196_T3A = "IEC_62196_T3A"
    IEC_62196_T3C = "IEC_62196_T3C"
    TESLA_R = "TESLA_R"
    TESLA_S = "TESLA_S"


class EnergySourceCategory(StrEnum):
    """EnergySourceCategory enum (mod_locations.md)."""

    NUCLEAR = "NUCLEAR"
    GENERAL_FOSSIL = "GENERAL_FOSSIL"
    COAL = "COAL"
    GAS = "GAS"
    GENERAL_GREEN = "GENERAL_GREEN"
    SOLAR = "SOLAR"
    WIND = "WIND"
    WATER = "WATER"


class EnvironmentalImpactCategory(StrEnum):
    """EnvironmentalImpactCategory enum (mod_locations.md)."""

    NUCLEAR_WASTE = "NUCLEAR_WASTE"
    CARBON_DIOXIDE = "CARBON_DIOXIDE"


class Facility(StrEnum):
    """Facility enum (mod_locations.md)."""

    HOTEL = "HOTEL"
    RESTAURANT = "RESTAURANT"
    CAFE = "CAFE"
    MALL = "MALL"
    SUPERMARKET = "SUPERMARKET"
    SPORT = "SPORT"
    RECREATION_AREA = "RECREATION_AREA"
    NATURE = "NATURE"
    MUSEUM = "MUSEUM"
    BUS_STOP = "BUS_STOP"
    TAXI_STAND = "TAXI_STAND"
    TRAIN_STATION = "TRAIN_STATION"
    AIRPORT = "AIRPORT"
    CARPOOL_PARKING = "CARPOOL_PARKING"
    FUEL_STATION = "FUEL_STATION"
    WIFI = "WIFI"


class ImageCategory(StrEnum):
    """ImageCategory enum (mod_locations.md)."""

    CHARGER = "CHARGER"
    ENTRANCE = "ENTRANCE"
    LOCATION = "LOCATION"
    NETWORK = "NETWORK"
    OPERATOR = "OPERATOR"
    OTHER = "OTHER"
    OWNER = "OWNER"


class LocationType(StrEnum):
    """LocationType enum (mod_locations.md)."""

    ON_STREET = "ON_STREET"
    PARKING_GARAGE = "PARKING_GARAGE"
    UNDERGROUND_GARAGE = "UNDERGROUND_GARAGE"
    PARKING_LOT = "PARKING_LOT"
    OTHER = "OTHER"
    UNKNOWN = "UNKNOWN"


class ParkingRestriction(StrEnum):
    """ParkingRestriction enum (mod_locations.md)."""

    EV_ONLY = "EV_ONLY"
    PLUGGED = "PLUGGED"
    DISABLED = "DISABLED"
    CUSTOMERS = "CUSTOMERS"
    MOTORCYCLES = "MOTORCYCLES"


class PowerType(StrEnum):
    """PowerType enum (mod_locations.md)."""

    AC_1_PHASE = "AC_1_PHASE"
    AC_3_PHASE = "AC_3_PHASE"
    DC = "DC"


class Status(StrEnum):
    """Status enum (mod_locations.md)."""

    AVAILABLE = "AVAILABLE"
    BLOCKED = "BLOCKED"
    CHARGING = "CHARGING"
    INOPERATIVE = "INOPERATIVE"
    OUTOFORDER = "OUTOFORDER"
    PLANNED = "PLANNED"
    REMOVED = "REMOVED"
    RESERVED = "RESERVED"
    UNKNOWN = "UNKNOWN"


class SessionStatus(StrEnum):
    """SessionStatus enum (mod_sessions.md)."""

    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    INVALID = "INVALID"
    PENDING = "PENDING"


class DayOfWeek(StrEnum):
    """DayOfWeek enum (mod_tariffs.md)."""

    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


class TariffDimensionType(StrEnum):
    """TariffDimensionType enum (mod_tariffs.md)."""

    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class Allowed(StrEnum):
    """Allowed enum (mod_tokens.md)."""

    ALLOWED = "ALLOWED"
    BLOCKED = "BLOCKED"
    EXPIRED = "EXPIRED"
    NO_CREDIT = "NO_CREDIT"
    NOT_ALLOWED = "NOT_ALLOWED"


class TokenType(StrEnum):
    """TokenType enum (mod_tokens.md)."""

    OTHER = "OTHER"
    RFID = "RFID"


class WhitelistType(StrEnum):
    """WhitelistType enum (mod_tokens.md)."""

    ALWAYS = "ALWAYS"
    ALLOWED = "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE"
    NEVER = "NEVER"


class VersionNumber(StrEnum):
    """VersionNumber enum (version_information_endpoint.md)."""

    V2_0 = "2.0"
    V2_1 = "2.1"
    V2_1_1 = "2.1.1"


class Credentials(OcpiModel):
    """Credentials (credentials.md)."""

    token: Annotated[str, Field(max_length=64)]
    url: Annotated[str, Field(max_length=255)]
    business_details: BusinessDetails
    party_id: Annotated[str, Field(max_length=3)]
    country_code: Annotated[str, Field(max_length=2)]


class CDR(OcpiModel):
    """CDR (mod_cdrs.md)."""

    id: Annotated[str, Field(max_length=36)]
    start_date_time: DateTime
    stop_date_time: DateTime
    auth_id: Annotated[str, Field(max_length=36)]
    auth_method: AuthMethod
    location: Location
    meter_id: Annotated[str, Field(max_length=255)] | None = None
    currency: Annotated[str, Field(max_length=3)]
    tariffs: list[Tariff] | None = None
    charging_periods: list[ChargingPeriod] = Field(min_length=1)
    total_cost: float
    total_energy: float
    total_time: float
    total_parking_time: float | None = None
    remark: Annotated[str, Field(max_length=255)] | None = None
    last_updated: DateTime


class CdrDimension(OcpiModel):
    """CdrDimension (mod_cdrs.md)."""

    type: CdrDimensionType
    volume: float


class ChargingPeriod(OcpiModel):
    """ChargingPeriod (mod_cdrs.md)."""

    start_date_time: DateTime
    dimensions: list[CdrDimension] = Field(min_length=1)


class CommandResponse(OcpiModel):
    """CommandResponse (mod_commands.md)."""

    result: CommandResponseType


class ReserveNow(OcpiModel):
    """ReserveNow (mod_commands.md)."""

    response_url: Annotated[str, Field(max_length=255)]
    token: Token
    expiry_date: DateTime
    reservation_id: int
    location_id: Annotated[str, Field(max_length=39)]
    evse_uid: Annotated[str, Field(max_length=39)] | None = None


class StartSession(OcpiModel):
    """StartSession (mod_commands.md)."""

    response_url: Annotated[str, Field(max_length=255)]
    token: Token
    location_id: Annotated[str, Field(max_length=39)]
    evse_uid: Annotated[str, Field(max_length=39)] | None = None


class StopSession(OcpiModel):
    """StopSession (mod_commands.md)."""

    response_url: Annotated[str, Field(max_length=255)]
    session_id: Annotated[str, Field(max_length=36)]


class UnlockConnector(OcpiModel):
    """UnlockConnector (mod_commands.md)."""

    response_url: Annotated[str, Field(max_length=255)]
    location_id: Annotated[str, Field(max_length=39)]
    evse_uid: Annotated[str, Field(max_length=39)]
    connector_id: Annotated[str, Field(max_length=36)]


class Location(OcpiModel):
    """Location (mod_locations.md)."""

    id: Annotated[str, Field(max_length=39)]
    type: LocationType
    name: Annotated[str, Field(max_length=255)] | None = None
    address: Annotated[str, Field(max_length=45)]
    city: Annotated[str, Field(max_length=45)]
    postal_code: Annotated[str, Field(max_length=10)]
    country: Annotated[str, Field(max_length=3)]
    coordinates: GeoLocation
    related_locations: list[AdditionalGeoLocation] | None = None
    evses: list[EVSE] | None = None
    directions: list[DisplayText] | None = None
    operator: BusinessDetails | None = None
    suboperator: BusinessDetails | None = None
    owner: BusinessDetails | None = None
    facilities: list[Facility] | None = None
    time_zone: Annotated[str, Field(max_length=255)] | None = None
    opening_times: Hours | None = None
    charging_when_closed: bool | None = None
    images: list[Image] | None = None
    energy_mix: EnergyMix | None = None
    last_updated: DateTime


class EVSE(OcpiModel):
    """EVSE (mod_locations.md)."""

    uid: Annotated[str, Field(max_length=39)]
    evse_id: Annotated[str, Field(max_length=48)] | None = None
    status: Status
    status_schedule: list[StatusSchedule] | None = None
    capabilities: list[Capability] | None = None
    connectors: list[Connector] = Field(min_length=1)
    floor_level: Annotated[str, Field(max_length=4)] | None = None
    coordinates: GeoLocation | None = None
    physical_reference: Annotated[str, Field(max_length=16)] | None = None
    directions: list[DisplayText] | None = None
    parking_restrictions: list[ParkingRestriction] | None = None
    images: list[Image] | None = None
    last_updated: DateTime


class Connector(OcpiModel):
    """Connector (mod_locations.md)."""

    id: Annotated[str, Field(max_length=36)]
    standard: ConnectorType
    format: ConnectorFormat
    power_type: PowerType
    voltage: int
    amperage: int
    tariff_id: Annotated[str, Field(max_length=36)] | None = None
    terms_and_conditions: Annotated[str, Field(max_length=255)] | None = None
    last_updated: DateTime


class AdditionalGeoLocation(OcpiModel):
    """AdditionalGeoLocation (mod_locations.md)."""

    latitude: Annotated[str, Field(max_length=10)]
    longitude: Annotated[str, Field(max_length=11)]
    name: DisplayText | None = None


class BusinessDetails(OcpiModel):
    """BusinessDetails (mod_locations.md)."""

    name: Annotated[str, Field(max_length=100)]
    website: Annotated[str, Field(max_length=255)] | None = None
    logo: Image | None = None


class EnergyMix(OcpiModel):
    """EnergyMix (mod_locations.md)."""

    is_green_energy: bool
    energy_sources: list[EnergySource] | None = None
    environ_impact: list[EnvironmentalImpact] | None = None
    supplier_name: Annotated[str, Field(max_length=64)] | None = None
    energy_product_name: Annotated[str, Field(max_length=64)] | None = None


class EnergySource(OcpiModel):
    """EnergySource (mod_locations.md)."""

    source: EnergySourceCategory
    percentage: float


class EnvironmentalImpact(OcpiModel):
    """EnvironmentalImpact (mod_locations.md)."""

    source: EnvironmentalImpactCategory
    amount: float


class ExceptionalPeriod(OcpiModel):
    """ExceptionalPeriod (mod_locations.md)."""

    period_begin: DateTime
    period_end: DateTime


class GeoLocation(OcpiModel):
    """GeoLocation (mod_locations.md)."""

    latitude: Annotated[str, Field(max_length=10)]
    longitude: Annotated[str, Field(max_length=11)]


class Hours(OcpiModel):
    """Hours (mod_locations.md)."""

    regular_hours: list[RegularHours] | None = None
    twentyfourseven: bool | None = None
    exceptional_openings: list[ExceptionalPeriod] | None = None
    exceptional_closings: list[ExceptionalPeriod] | None = None


class Image(OcpiModel):
    """Image (mod_locations.md)."""

    url: Annotated[str, Field(max_length=255)]
    thumbnail: Annotated[str, Field(max_length=255)] | None = None
    category: ImageCategory
    type: Annotated[str, Field(max_length=4)]
    width: Annotated[int, Field(ge=0, lt=100000)] | None = None
    height: Annotated[int, Field(ge=0, lt=100000)] | None = None


class RegularHours(OcpiModel):
    """RegularHours (mod_locations.md)."""

    weekday: Annotated[int, Field(ge=0, lt=10)]
    period_begin: Annotated[str, Field(max_length=5)]
    period_end: Annotated[str, Field(max_length=5)]


class StatusSchedule(OcpiModel):
    """StatusSchedule (mod_locations.md)."""

    period_begin: DateTime
    period_end: DateTime | None = None
    status: Status


class Session(OcpiModel):
    """Session (mod_sessions.md)."""

    id: Annotated[str, Field(max_length=36)]
    start_datetime: DateTime
    end_datetime: DateTime | None = None
    kwh: float
    auth_id: Annotated[str, Field(max_length=36)]
    auth_method: AuthMethod
    location: Location
    meter_id: Annotated[str, Field(max_length=255)] | None = None
    currency: Annotated[str, Field(max_length=3)]
    charging_periods: list[ChargingPeriod] | None = None
    total_cost: float | None = None
    status: SessionStatus
    last_updated: DateTime


class Tariff(OcpiModel):
    """Tariff (mod_tariffs.md)."""

    id: Annotated[str, Field(max_length=36)]
    currency: Annotated[str, Field(max_length=3)]
    tariff_alt_text: list[DisplayText] | None = None
    tariff_alt_url: Annotated[str, Field(max_length=255)] | None = None
    elements: list[TariffElement] = Field(min_length=1)
    energy_mix: EnergyMix | None = None
    last_updated: DateTime


class PriceComponent(OcpiModel):
    """PriceComponent (mod_tariffs.md)."""

    type: TariffDimensionType
    price: float
    step_size: int


class TariffElement(OcpiModel):
    """TariffElement (mod_tariffs.md)."""

    price_components: list[PriceComponent] = Field(min_length=1)
    restrictions: TariffRestrictions | None = None


class TariffRestrictions(OcpiModel):
    """TariffRestrictions (mod_tariffs.md)."""

    start_time: Annotated[str, Field(max_length=5)] | None = None
    end_time: Annotated[str, Field(max_length=5)] | None = None
    start_date: Annotated[str, Field(max_length=10)] | None = None
    end_date: Annotated[str, Field(max_length=10)] | None = None
    min_kwh: float | None = None
    max_kwh: float | None = None
    min_power: float | None = None
    max_power: float | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: list[DayOfWeek] | None = None


class AuthorizationInfo(OcpiModel):
    """AuthorizationInfo (mod_tokens.md)."""

    allowed: Allowed
    location: LocationReferences | None = None
    info: DisplayText | None = None


class Token(OcpiModel):
    """Token (mod_tokens.md)."""

    uid: Annotated[str, Field(max_length=36)]
    type: TokenType
    auth_id: Annotated[str, Field(max_length=36)]
    visual_number: Annotated[str, Field(max_length=64)] | None = None
    issuer: Annotated[str, Field(max_length=64)]
    valid: bool
    whitelist: WhitelistType
    language: Annotated[str, Field(max_length=2)] | None = None
    last_updated: DateTime


class LocationReferences(OcpiModel):
    """LocationReferences (mod_tokens.md)."""

    location_id: Annotated[str, Field(max_length=39)]
    evse_uids: list[Annotated[str, Field(max_length=39)]] | None = None
    connector_ids: list[Annotated[str, Field(max_length=36)]] | None = None


class DisplayText(OcpiModel):
    """DisplayText (types.md)."""

    language: Annotated[str, Field(max_length=2)]
    text: Annotated[str, Field(max_length=512)]


class Version(OcpiModel):
    """Version (version_information_endpoint.md)."""

    version: VersionNumber
    url: Annotated[str, Field(max_length=255)]


class Endpoint(OcpiModel):
    """Endpoint (version_information_endpoint.md)."""

    identifier: str
    url: Annotated[str, Field(max_length=255)]


for _model in list(globals().values()):
    if isinstance(_model, type) and issubclass(_model, OcpiModel):
        _model.model_rebuild()
