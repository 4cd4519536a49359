"""Pydantic v2 models of every OCPI 2.2.1 object, class and enum.

Generated from the field tables of the OCPI 2.2.1 specification by
routing/versions/generate.py and checked against them by tests/test_versions_models.py.
Used at the translation boundary only: same-version traffic is relayed as received.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# 2.2.1 is the hub's own version: its Role and InterfaceRole are the vocabulary's.
from routing.protocol.vocab import InterfaceRole, Role

# DateTime: RFC 3339 in UTC; kept as the sender's string so relayed values do not change.
DateTime = Annotated[str, Field(max_length=35, pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")]


class OcpiModel(BaseModel):
    """Base of every OCPI 2.2.1 object: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


class AuthMethod(StrEnum):
    """AuthMethod enum (mod_cdrs.asciidoc)."""

    AUTH_REQUEST = "AUTH_REQUEST"
    COMMAND = "COMMAND"
    WHITELIST = "WHITELIST"


class CdrDimensionType(StrEnum):
    """CdrDimensionType enum (mod_cdrs.asciidoc)."""

    CURRENT = "CURRENT"
    ENERGY = "ENERGY"
    ENERGY_EXPORT = "ENERGY_EXPORT"
    ENERGY_IMPORT = "ENERGY_IMPORT"
    MAX_CURRENT = "MAX_CURRENT"
    MIN_CURRENT = "MIN_CURRENT"
    MAX_POWER = "MAX_POWER"
    MIN_POWER = "MIN_POWER"
    PARKING_TIME = "PARKING_TIME"
    POWER = "POWER"
    RESERVATION_TIME = "RESERVATION_TIME"
    STATE_OF_CHARGE = "STATE_OF_CHARGE"
    TIME = "TIME"


class ChargingRateUnit(StrEnum):
    """ChargingRateUnit enum (mod_charging_profiles.asciidoc)."""

    W = "W"
    A = "A"


class ChargingProfileResponseType(StrEnum):
    """ChargingProfileResponseType enum (mod_charging_profiles.asciidoc)."""

    ACCEPTED = "ACCEPTED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TOO_OFTEN = "TOO_OFTEN"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class ChargingProfileResultType(StrEnum):
    """ChargingProfileResultType enum (mod_charging_profiles.asciidoc)."""

    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"


class CommandResponseType(StrEnum):
    """CommandResponseType enum (mod_commands.asciidoc)."""

    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    ACCEPTED = "ACCEPTED"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class CommandResultType(StrEnum):
    """CommandResultType enum (mod_commands.asciidoc)."""

    ACCEPTED = "ACCEPTED"
    CANCELED_RESERVATION = "CANCELED_RESERVATION"
    EVSE_OCCUPIED = "EVSE_OCCUPIED"
    EVSE_INOPERATIVE = "EVSE_INOPERATIVE"
    FAILED = "FAILED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TIMEOUT = "TIMEOUT"
    UNKNOWN_RESERVATION = "UNKNOWN_RESERVATION"


class CommandType(StrEnum):
    """CommandType enum (mod_commands.asciidoc)."""

    CANCEL_RESERVATION = "CANCEL_RESERVATION"
    RESERVE_NOW = "RESERVE_NOW"
    START_SESSION = "START_SESSION"
    STOP_SESSION = "STOP_SESSION"
    UNLOCK_CONNECTOR = "UNLOCK_CONNECTOR"


class ConnectionStatus(StrEnum):
    """ConnectionStatus enum (mod_hub_client_info.asciidoc)."""

    CONNECTED = "CONNECTED"
    OFFLINE = "OFFLINE"
    PLANNED = "PLANNED"
    SUSPENDED = "SUSPENDED"


class Capability(StrEnum):
    """Capability enum (mod_locations.asciidoc)."""

    CHARGING_PROFILE_CAPABLE = "CHARGING_PROFILE_CAPABLE"
    CHARGING_PREFERENCES_CAPABLE = "CHARGING_PREFERENCES_CAPABLE"
    CHIP_CARD_SUPPORT = "CHIP_CARD_SUPPORT"
    CONTACTLESS_CARD_SUPPORT = "CONTACTLESS_CARD_SUPPORT"
    CREDIT_CARD_PAYABLE = "CREDIT_CARD_PAYABLE"
    DEBIT_CARD_PAYABLE = "DEBIT_CARD_PAYABLE"
    PED_TERMINAL = "PED_TERMINAL"
    REMOTE_START_STOP_CAPABLE = "REMOTE_START_STOP_CAPABLE"
    RESERVABLE = "RESERVABLE"
    RFID_READER = "RFID_READER"
    START_SESSION_CONNECTOR_REQUIRED = "START_SESSION_CONNECTOR_REQUIRED"
    TOKEN_GROUP_CAPABLE = "TOKEN_GROUP_CAPABLE"
    UNLOCK_CAPABLE = "UNLOCK_CAPABLE"


class ConnectorFormat(StrEnum):
    """ConnectorFormat enum (mod_locations.asciidoc)."""

    SOCKET = "SOCKET"
    CABLE = "CABLE"


class ConnectorType(StrEnum):
    """ConnectorType enum (mod_locations.asciidoc)."""

    CHADEMO = "CHADEMO"
    CHAOJI = "CHAOJI"
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
    DOMESTIC_M = "DOMESTIC_M"
    DOMESTIC_N = "DOMESTIC_N"
    DOMESTIC_O = "DOMESTIC_O"
    GBT_AC = "GBT_AC"
    GBT_DC = "GBT_DC"
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
    NEMA_5_20 = "NEMA_5_20"
    NEMA_6_30 = "NEMA_6_30"
    NEMA_6_50 = "NEMA_6_50"
    NEMA_10_30 = "NEMA_10_30"
    NEMA_10_50 = "NEMA_10_50"
    NEMA_14_30 = "NEMA_14_30"
    NEMA_14_50 = "NEMA_14_50"
    PANTOGRAPH_BOTTOM_UP = "PANTOGRAPH_BOTTOM_UP"
    PANTOGRAPH_TOP_DOWN = "PANTOGRAPH_TOP_DOWN"
    TESLA_R = "TESLA_R"
    TESLA_S = "TESLA_S"


class EnergySourceCategory(StrEnum):
    """EnergySourceCategory enum (mod_locations.asciidoc)."""

    NUCLEAR = "NUCLEAR"
    GENERAL_FOSSIL = "GENERAL_FOSSIL"
    COAL = "COAL"
    GAS = "GAS"
    GENERAL_GREEN = "GENERAL_GREEN"
    SOLAR = "SOLAR"
    WIND = "WIND"
    WATER = "WATER"


class EnvironmentalImpactCategory(StrEnum):
    """EnvironmentalImpactCategory enum (mod_locations.asciidoc)."""

    NUCLEAR_WASTE = "NUCLEAR_WASTE"
    CARBON_DIOXIDE = "CARBON_DIOXIDE"


class Facility(StrEnum):
    """Facility enum (mod_locations.asciidoc)."""

    HOTEL = "HOTEL"
    RESTAURANT = "RESTAURANT"
    CAFE = "CAFE"
    MALL = "MALL"
    SUPERMARKET = "SUPERMARKET"
    SPORT = "SPORT"
    RECREATION_AREA = "RECREATION_AREA"
    NATURE = "NATURE"
    MUSEUM = "MUSEUM"
    BIKE_SHARING = "BIKE_SHARING"
    BUS_STOP = "BUS_STOP"
    TAXI_STAND = "TAXI_STAND"
    TRAM_STOP = "TRAM_STOP"
    METRO_STATION = "METRO_STATION"
    TRAIN_STATION = "TRAIN_STATION"
    AIRPORT = "AIRPORT"
    PARKING_LOT = "PARKING_LOT"
    CARPOOL_PARKING = "CARPOOL_PARKING"
    FUEL_STATION = "FUEL_STATION"
    WIFI = "WIFI"


class ImageCategory(StrEnum):
    """ImageCategory enum (mod_locations.asciidoc)."""

    CHARGER = "CHARGER"
    ENTRANCE = "ENTRANCE"
    LOCATION = "LOCATION"
    NETWORK = "NETWORK"
    OPERATOR = "OPERATOR"
    OTHER = "OTHER"
    OWNER = "OWNER"


class ParkingRestriction(StrEnum):
    """ParkingRestriction enum (mod_locations.asciidoc)."""

    EV_ONLY = "EV_ONLY"
    PLUGGED = "PLUGGED"
    DISABLED = "DISABLED"
    CUSTOMERS = "CUSTOMERS"
    MOTORCYCLES = "MOTORCYCLES"


class ParkingType(StrEnum):
    """ParkingType enum (mod_locations.asciidoc)."""

    ALONG_MOTORWAY = "ALONG_MOTORWAY"
    PARKING_GARAGE = "PARKING_GARAGE"
    PARKING_LOT = "PARKING_LOT"
    ON_DRIVEWAY = "ON_DRIVEWAY"
    ON_STREET = "ON_STREET"
    UNDERGROUND_GARAGE = "UNDERGROUND_GARAGE"


class PowerType(StrEnum):
    """PowerType enum (mod_locations.asciidoc)."""

    AC_1_PHASE = "AC_1_PHASE"
    AC_2_PHASE = "AC_2_PHASE"
    AC_2_PHASE_SPLIT = "AC_2_PHASE_SPLIT"
    AC_3_PHASE = "AC_3_PHASE"
    DC = "DC"


class Status(StrEnum):
    """Status enum (mod_locations.asciidoc)."""

    AVAILABLE = "AVAILABLE"
    BLOCKED = "BLOCKED"
    CHARGING = "CHARGING"
    INOPERATIVE = "INOPERATIVE"
    OUTOFORDER = "OUTOFORDER"
    PLANNED = "PLANNED"
    REMOVED = "REMOVED"
    RESERVED = "RESERVED"
    UNKNOWN = "UNKNOWN"


class ChargingPreferencesResponse(StrEnum):
    """ChargingPreferencesResponse enum (mod_sessions.asciidoc)."""

    ACCEPTED = "ACCEPTED"
    DEPARTURE_REQUIRED = "DEPARTURE_REQUIRED"
    ENERGY_NEED_REQUIRED = "ENERGY_NEED_REQUIRED"
    NOT_POSSIBLE = "NOT_POSSIBLE"
    PROFILE_TYPE_NOT_SUPPORTED = "PROFILE_TYPE_NOT_SUPPORTED"


class ProfileType(StrEnum):
    """ProfileType enum (mod_sessions.asciidoc)."""

    CHEAP = "CHEAP"
    FAST = "FAST"
    GREEN = "GREEN"
    REGULAR = "REGULAR"


class SessionStatus(StrEnum):
    """SessionStatus enum (mod_sessions.asciidoc)."""

    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    INVALID = "INVALID"
    PENDING = "PENDING"
    RESERVATION = "RESERVATION"


class DayOfWeek(StrEnum):
    """DayOfWeek enum (mod_tariffs.asciidoc)."""

    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


class ReservationRestrictionType(StrEnum):
    """ReservationRestrictionType enum (mod_tariffs.asciidoc)."""

    RESERVATION = "RESERVATION"
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"


class TariffDimensionType(StrEnum):
    """TariffDimensionType enum (mod_tariffs.asciidoc)."""

    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class TariffType(StrEnum):
    """TariffType enum (mod_tariffs.asciidoc)."""

    AD_HOC_PAYMENT = "AD_HOC_PAYMENT"
    PROFILE_CHEAP = "PROFILE_CHEAP"
    PROFILE_FAST = "PROFILE_FAST"
    PROFILE_GREEN = "PROFILE_GREEN"
    REGULAR = "REGULAR"


class AllowedType(StrEnum):
    """AllowedType enum (mod_tokens.asciidoc)."""

    ALLOWED = "ALLOWED"
    BLOCKED = "BLOCKED"
    EXPIRED = "EXPIRED"
    NO_CREDIT = "NO_CREDIT"
    NOT_ALLOWED = "NOT_ALLOWED"


class TokenType(StrEnum):
    """TokenType enum (mod_tokens.asciidoc)."""

    AD_HOC_USER = "AD_HOC_USER"
    APP_USER = "APP_USER"
    OTHER = "OTHER"
    RFID = "RFID"


class WhitelistType(StrEnum):
    """WhitelistType enum (mod_tokens.asciidoc)."""

    ALWAYS = "ALWAYS"
    ALLOWED = "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE"
    NEVER = "NEVER"


class VersionNumber(StrEnum):
    """VersionNumber enum (version_information_endpoint.asciidoc)."""

    V2_0 = "2.0"
    V2_1 = "2.1"
    V2_1_1 = "2.1.1"
    V2_2 = "2.2"
    V2_2_1 = "2.2.1"


class Credentials(OcpiModel):
    """Credentials (credentials.asciidoc)."""

    token: Annotated[str, Field(max_length=64)]
    url: Annotated[str, Field(max_length=255)]
    roles: list[CredentialsRole] = Field(min_length=1)


class CredentialsRole(OcpiModel):
    """CredentialsRole (credentials.asciidoc)."""

    role: Role
    business_details: BusinessDetails
    party_id: Annotated[str, Field(max_length=3)]
    country_code: Annotated[str, Field(max_length=2)]


class CDR(OcpiModel):
    """CDR (mod_cdrs.asciidoc)."""

    country_code: Annotated[str, Field(max_length=2)]
    party_id: Annotated[str, Field(max_length=3)]
    id: Annotated[str, Field(max_length=39)]
    start_date_time: DateTime
    end_date_time: DateTime
    session_id: Annotated[str, Field(max_length=36)] | None = None
    cdr_token: CdrToken
    auth_method: AuthMethod
    authorization_reference: Annotated[str, Field(max_length=36)] | None = None
    cdr_location: CdrLocation
    meter_id: Annotated[str, Field(max_length=255)] | None = None
    currency: Annotated[str, Field(max_length=3)]
    tariffs: list[Tariff] | None = None
    charging_periods: list[ChargingPeriod] = Field(min_length=1)
    signed_data: SignedData | None = None
    total_cost: Price
    total_fixed_cost: Price | None = None
    total_energy: float
    total_energy_cost: Price | None = None
    total_time: float
    total_time_cost: Price | None = None
    total_parking_time: float | None = None
    total_parking_cost: Price | None = None
    total_reservation_cost: Price | None = None
    remark: Annotated[str, Field(max_length=255)] | None = None
    invoice_reference_id: Annotated[str, Field(max_length=39)] | None = None
    credit: bool | None = None
    credit_reference_id: Annotated[str, Field(max_length=39)] | None = None
    home_charging_compensation: bool | None = None
    last_updated: DateTime


class CdrDimension(OcpiModel):
    """CdrDimension (mod_cdrs.asciidoc)."""

    type: CdrDimensionType
    volume: float


class CdrLocation(OcpiModel):
    """CdrLocation (mod_cdrs.asciidoc)."""

    id: Annotated[str, Field(max_length=36)]
    name: Annotated[str, Field(max_length=255)] | None = None
    address: Annotated[str, Field(max_length=45)]
    city: Annotated[str, Field(max_length=45)]
    postal_code: Annotated[str, Field(max_length=10)] | None = None
    state: Annotated[str, Field(max_length=20)] | None = None
    country: Annotated[str, Field(max_length=3)]
    coordinates: GeoLocation
    evse_uid: Annotated[str, Field(max_length=36)]
    evse_id: Annotated[str, Field(max_length=48)]
    connector_id: Annotated[str, Field(max_length=36)]
    connector_standard: ConnectorType
    connector_format: ConnectorFormat
    connector_power_type: PowerType


class CdrToken(OcpiModel):
    """CdrToken (mod_cdrs.asciidoc)."""

    country_code: Annotated[str, Field(max_length=2)]
    party_id: Annotated[str, Field(max_length=3)]
    uid: Annotated[str, Field(max_length=36)]
    type: TokenType
    contract_id: Annotated[str, Field(max_length=36)]


class ChargingPeriod(OcpiModel):
    """ChargingPeriod (mod_cdrs.asciidoc)."""

    start_date_time: DateTime
    dimensions: list[CdrDimension] = Field(min_length=1)
    tariff_id: Annotated[str, Field(max_length=36)] | None = None


class SignedData(OcpiModel):
    """SignedData (mod_cdrs.asciidoc)."""

    encoding_method: Annotated[str, Field(max_length=36)]
    encoding_method_version: int | None = None
    public_key: Annotated[str, Field(max_length=512)] | None = None
    signed_values: list[SignedValue] = Field(min_length=1)
    url: Annotated[str, Field(max_length=512)] | None = None


class SignedValue(OcpiModel):
    """SignedValue (mod_cdrs.asciidoc)."""

    nature: Annotated[str, Field(max_length=32)]
    plain_data: Annotated[str, Field(max_length=512)]
    signed_data: Annotated[str, Field(max_length=5000)]


class ChargingProfileResponse(OcpiModel):
    """ChargingProfileResponse (mod_charging_profiles.asciidoc)."""

    result: ChargingProfileResponseType
    timeout: int


class ActiveChargingProfileResult(OcpiModel):
    """ActiveChargingProfileResult (mod_charging_profiles.asciidoc)."""

    result: ChargingProfileResultType
    profile: ActiveChargingProfile | None = None


class ChargingProfileResult(OcpiModel):
    """ChargingProfileResult (mod_charging_profiles.asciidoc)."""

    result: ChargingProfileResultType


class ClearProfileResult(OcpiModel):
    """ClearProfileResult (mod_charging_profiles.asciidoc)."""

    result: ChargingProfileResultType


class SetChargingProfile(OcpiModel):
    """SetChargingProfile (mod_charging_profiles.asciidoc)."""

    charging_profile: ChargingProfile
    response_url: Annotated[str, Field(max_length=255)]


class ActiveChargingProfile(OcpiModel):
    """ActiveChargingProfile (mod_charging_profiles.asciidoc)."""

    start_date_time: DateTime
    charging_profile: ChargingProfile


class ChargingProfile(OcpiModel):
    """ChargingProfile (mod_charging_profiles.asciidoc)."""

    start_date_time: DateTime | None = None
    duration: int | None = None
    charging_rate_unit: ChargingRateUnit
    min_charging_rate: float | None = None
    charging_profile_period: list[ChargingProfilePeriod] | None = None


class ChargingProfilePeriod(OcpiModel):
    """ChargingProfilePeriod (mod_charging_profiles.asciidoc)."""

    start_period: int
    limit: float


class CancelReservation(OcpiModel):
    """CancelReservation (mod_commands.asciidoc)."""

    response_url: Annotated[str, Field(max_length=255)]
    reservation_id: Annotated[str, Field(max_length=36)]


class CommandResponse(OcpiModel):
    """CommandResponse (mod_commands.asciidoc)."""

    result: CommandResponseType
    timeout: int
    message: list[DisplayText] | None = None


class CommandResult(OcpiModel):
    """CommandResult (mod_commands.asciidoc)."""

    result: CommandResultType
    message: list[DisplayText] | None = None


class ReserveNow(OcpiModel):
    """ReserveNow (mod_commands.asciidoc)."""

    response_url: Annotated[str, Field(max_length=255)]
    token: Token
    expiry_date: DateTime
    reservation_id: Annotated[str, Field(max_length=36)]
    location_id: Annotated[str, Field(max_length=36)]
    evse_uid: Annotated[str, Field(max_length=36)] | None = None
    authorization_reference: Annotated[str, Field(max_length=36)] | None = None


class StartSession(OcpiModel):
    """StartSession (mod_commands.asciidoc)."""

    response_url: Annotated[str, Field(max_length=255)]
    token: Token
    location_id: Annotated[str, Field(max_length=36)]
    evse_uid: Annotated[str, Field(max_length=36)] | None = None
    connector_id: Annotated[str, Field(max_length=36)] | None = None
    authorization_reference: Annotated[str, Field(max_length=36)] | None = None


class StopSession(OcpiModel):
    """StopSession (mod_commands.asciidoc)."""

    response_url: Annotated[str, Field(max_length=255)]
    session_id: Annotated[str, Field(max_length=36)]


class UnlockConnector(OcpiModel):
    """UnlockConnector (mod_commands.asciidoc)."""

    response_url: Annotated[str, Field(max_length=255)]
    location_id: Annotated[str, Field(max_length=36)]
    evse_uid: Annotated[str, Field(max_length=36)]
    connector_id: Annotated[str, Field(max_length=36)]


class ClientInfo(OcpiModel):
    """ClientInfo (mod_hub_client_info.asciidoc)."""

    party_id: Annotated[str, Field(max_length=3)]
    country_code: Annotated[str, Field(max_length=2)]
    role: Role
    status: ConnectionStatus
    last_updated: DateTime


class Location(OcpiModel):
    """Location (mod_locations.asciidoc)."""

    country_code: Annotated[str, Field(max_length=2)]
    party_id: Annotated[str, Field(max_length=3)]
    id: Annotated[str, Field(max_length=36)]
    publish: bool
    publish_allowed_to: list[PublishTokenType] | None = None
    name: Annotated[str, Field(max_length=255)] | None = None
    address: Annotated[str, Field(max_length=45)]
    city: Annotated[str, Field(max_length=45)]
    postal_code: Annotated[str, Field(max_length=10)] | None = None
    state: Annotated[str, Field(max_length=20)] | None = None
    country: Annotated[str, Field(max_length=3)]
    coordinates: GeoLocation
    related_locations: list[AdditionalGeoLocation] | None = None
    parking_type: ParkingType | None = None
    evses: list[EVSE] | None = None
    directions: list[DisplayText] | None = None
    operator: BusinessDetails | None = None
    suboperator: BusinessDetails | None = None
    owner: BusinessDetails | None = None
    facilities: list[Facility] | None = None
    time_zone: Annotated[str, Field(max_length=255)]
    opening_times: Hours | None = None
    charging_when_closed: bool | None = None
    images: list[Image] | None = None
    energy_mix: EnergyMix | None = None
    last_updated: DateTime


class EVSE(OcpiModel):
    """EVSE (mod_locations.asciidoc)."""

    uid: Annotated[str, Field(max_length=36)]
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
    """Connector (mod_locations.asciidoc)."""

    id: Annotated[str, Field(max_length=36)]
    standard: ConnectorType
    format: ConnectorFormat
    power_type: PowerType
    max_voltage: int
    max_amperage: int
    max_electric_power: int | None = None
    tariff_ids: list[Annotated[str, Field(max_length=36)]] | None = None
    terms_and_conditions: Annotated[str, Field(max_length=255)] | None = None
    last_updated: DateTime


class AdditionalGeoLocation(OcpiModel):
    """AdditionalGeoLocation (mod_locations.asciidoc)."""

    latitude: Annotated[str, Field(max_length=10)]
    longitude: Annotated[str, Field(max_length=11)]
    name: DisplayText | None = None


class BusinessDetails(OcpiModel):
    """BusinessDetails (mod_locations.asciidoc)."""

    name: Annotated[str, Field(max_length=100)]
    website: Annotated[str, Field(max_length=255)] | None = None
    logo: Image | None = None


class EnergyMix(OcpiModel):
    """EnergyMix (mod_locations.asciidoc)."""

    is_green_energy: bool
    energy_sources: list[EnergySource] | None = None
    environ_impact: list[EnvironmentalImpact] | None = None
    supplier_name: Annotated[str, Field(max_length=64)] | None = None
    energy_product_name: Annotated[str, Field(max_length=64)] | None = None


class EnergySource(OcpiModel):
    """EnergySource (mod_locations.asciidoc)."""

    source: EnergySourceCategory
    percentage: float


class EnvironmentalImpact(OcpiModel):
    """EnvironmentalImpact (mod_locations.asciidoc)."""

    category: EnvironmentalImpactCategory
    amount: float


class ExceptionalPeriod(OcpiModel):
    """ExceptionalPeriod (mod_locations.asciidoc)."""

    period_begin: DateTime
    period_end: DateTime


class GeoLocation(OcpiModel):
    """GeoLocation (mod_locations.asciidoc)."""

    latitude: Annotated[str, Field(max_length=10)]
    longitude: Annotated[str, Field(max_length=11)]


class Hours(OcpiModel):
    """Hours (mod_locations.asciidoc)."""

    twentyfourseven: bool
    regular_hours: list[RegularHours] | None = None
    exceptional_openings: list[ExceptionalPeriod] | None = None
    exceptional_closings: list[ExceptionalPeriod] | None = None


class Image(OcpiModel):
    """Image (mod_locations.asciidoc)."""

    url: Annotated[str, Field(max_length=255)]
    thumbnail: Annotated[str, Field(max_length=255)] | None = None
    category: ImageCategory
    type: Annotated[str, Field(max_length=4)]
    width: Annotated[int, Field(ge=0, lt=100000)] | None = None
    height: Annotated[int, Field(ge=0, lt=100000)] | None = None


class PublishTokenType(OcpiModel):
    """PublishTokenType (mod_locations.asciidoc)."""

    uid: Annotated[str, Field(max_length=36)] | None = None
    type: TokenType | None = None
    visual_number: Annotated[str, Field(max_length=64)] | None = None
    issuer: Annotated[str, Field(max_length=64)] | None = None
    group_id: Annotated[str, Field(max_length=36)] | None = None


class RegularHours(OcpiModel):
    """RegularHours (mod_locations.asciidoc)."""

    weekday: Annotated[int, Field(ge=0, lt=10)]
    period_begin: Annotated[str, Field(max_length=5)]
    period_end: Annotated[str, Field(max_length=5)]


class StatusSchedule(OcpiModel):
    """StatusSchedule (mod_locations.asciidoc)."""

    period_begin: DateTime
    period_end: DateTime | None = None
    status: Status


class Session(OcpiModel):
    """Session (mod_sessions.asciidoc)."""

    country_code: Annotated[str, Field(max_length=2)]
    party_id: Annotated[str, Field(max_length=3)]
    id: Annotated[str, Field(max_length=36)]
    start_date_time: DateTime
    end_date_time: DateTime | None = None
    kwh: float
    cdr_token: CdrToken
    auth_method: AuthMethod
    authorization_reference: Annotated[str, Field(max_length=36)] | None = None
    location_id: Annotated[str, Field(max_length=36)]
    evse_uid: Annotated[str, Field(max_length=36)]
    connector_id: Annotated[str, Field(max_length=36)]
    meter_id: Annotated[str, Field(max_length=255)] | None = None
    currency: Annotated[str, Field(max_length=3)]
    charging_periods: list[ChargingPeriod] | None = None
    total_cost: Price | None = None
    status: SessionStatus
    last_updated: DateTime


class ChargingPreferences(OcpiModel):
    """ChargingPreferences (mod_sessions.asciidoc)."""

    profile_type: ProfileType
    departure_time: DateTime | None = None
    energy_need: float | None = None
    discharge_allowed: bool | None = None


class Tariff(OcpiModel):
    """Tariff (mod_tariffs.asciidoc)."""

    country_code: Annotated[str, Field(max_length=2)]
    party_id: Annotated[str, Field(max_length=3)]
    id: Annotated[str, Field(max_length=36)]
    currency: Annotated[str, Field(max_length=3)]
    type: TariffType | None = None
    tariff_alt_text: list[DisplayText] | None = None
    tariff_alt_url: Annotated[str, Field(max_length=255)] | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    elements: list[TariffElement] = Field(min_length=1)
    start_date_time: DateTime | None = None
    end_date_time: DateTime | None = None
    energy_mix: EnergyMix | None = None
    last_updated: DateTime


class PriceComponent(OcpiModel):
    """PriceComponent (mod_tariffs.asciidoc)."""

    type: TariffDimensionType
    price: float
    vat: float | None = None
    step_size: int


class TariffElement(OcpiModel):
    """TariffElement (mod_tariffs.asciidoc)."""

    price_components: list[PriceComponent] = Field(min_length=1)
    restrictions: TariffRestrictions | None = None


class TariffRestrictions(OcpiModel):
    """TariffRestrictions (mod_tariffs.asciidoc)."""

    start_time: Annotated[str, Field(max_length=5)] | None = None
    end_time: Annotated[str, Field(max_length=5)] | None = None
    start_date: Annotated[str, Field(max_length=10)] | None = None
    end_date: Annotated[str, Field(max_length=10)] | None = None
    min_kwh: float | None = None
    max_kwh: float | None = None
    min_current: float | None = None
    max_current: float | None = None
    min_power: float | None = None
    max_power: float | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: list[DayOfWeek] | None = None
    reservation: ReservationRestrictionType | None = None


class AuthorizationInfo(OcpiModel):
    """AuthorizationInfo (mod_tokens.asciidoc)."""

    allowed: AllowedType
    token: Token
    location: LocationReferences | None = None
    authorization_reference: Annotated[str, Field(max_length=36)] | None = None
    info: DisplayText | None = None


class Token(OcpiModel):
    """Token (mod_tokens.asciidoc)."""

    country_code: Annotated[str, Field(max_length=2)]
    party_id: Annotated[str, Field(max_length=3)]
    uid: Annotated[str, Field(max_length=36)]
    type: TokenType
    contract_id: Annotated[str, Field(max_length=36)]
    visual_number: Annotated[str, Field(max_length=64)] | None = None
    issuer: Annotated[str, Field(max_length=64)]
    group_id: Annotated[str, Field(max_length=36)] | None = None
    valid: bool
    whitelist: WhitelistType
    language: Annotated[str, Field(max_length=2)] | None = None
    default_profile_type: ProfileType | None = None
    energy_contract: EnergyContract | None = None
    last_updated: DateTime


class EnergyContract(OcpiModel):
    """EnergyContract (mod_tokens.asciidoc)."""

    supplier_name: Annotated[str, Field(max_length=64)]
    contract_id: Annotated[str, Field(max_length=64)] | None = None


class LocationReferences(OcpiModel):
    """LocationReferences (mod_tokens.asciidoc)."""

    location_id: Annotated[str, Field(max_length=36)]
    evse_uids: list[Annotated[str, Field(max_length=36)]] | None = None


class DisplayText(OcpiModel):
    """DisplayText (types.asciidoc)."""

    language: Annotated[str, Field(max_length=2)]
    text: Annotated[str, Field(max_length=512)]


class Price(OcpiModel):
    """Price (types.asciidoc)."""

    excl_vat: float
    incl_vat: float | None = None


class Version(OcpiModel):
    """Version (version_information_endpoint.asciidoc)."""

    version: VersionNumber
    url: Annotated[str, Field(max_length=255)]


class Endpoint(OcpiModel):
    """Endpoint (version_information_endpoint.asciidoc)."""

    identifier: str
    role: InterfaceRole
    url: Annotated[str, Field(max_length=255)]


for _model in list(globals().values()):
    if isinstance(_model, type) and issubclass(_model, OcpiModel):
        _model.model_rebuild()
