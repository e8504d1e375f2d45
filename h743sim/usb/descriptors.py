"""Parsing of standard USB descriptors as a device sends them (USB 2.0 ch. 9; FACTS.md §E.6).

Objects carry the spec's field names (what pyusb copies onto its Device/Configuration/Interface/
Endpoint objects). Class-specific descriptors go in ``extra_descriptors`` of the descriptor they follow,
as libusb does: after the configuration header -> the configuration, after an interface -> that
alternate setting, after an endpoint -> the endpoint.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

DT_DEVICE = 1
DT_CONFIGURATION = 2
DT_STRING = 3
DT_INTERFACE = 4
DT_ENDPOINT = 5

GET_STATUS, CLEAR_FEATURE, SET_FEATURE, SET_ADDRESS, GET_DESCRIPTOR = 0, 1, 3, 5, 6
GET_CONFIGURATION, SET_CONFIGURATION, GET_INTERFACE, SET_INTERFACE = 8, 9, 10, 11


class DescriptorError(ValueError):
    """A descriptor from the device that is too short or inconsistent."""


@dataclass
class DeviceDescriptor:
    bLength: int
    bDescriptorType: int
    bcdUSB: int
    bDeviceClass: int
    bDeviceSubClass: int
    bDeviceProtocol: int
    bMaxPacketSize0: int
    idVendor: int
    idProduct: int
    bcdDevice: int
    iManufacturer: int
    iProduct: int
    iSerialNumber: int
    bNumConfigurations: int
    # filled by the host side (pyusb reads them from the backend's device descriptor)
    bus: int | None = None
    address: int | None = None
    port_number: int | None = None
    port_numbers: tuple[int, ...] | None = None
    speed: int | None = None

    @classmethod
    def parse(cls, raw: bytes) -> DeviceDescriptor:
        if len(raw) < 18:
            raise DescriptorError(f"device descriptor is {len(raw)} bytes, expected 18")
        if raw[1] != DT_DEVICE:
            raise DescriptorError(f"device descriptor has type {raw[1]}, expected {DT_DEVICE}")
        return cls(*struct.unpack("<BBHBBBBHHHBBBB", bytes(raw[:18])))


@dataclass
class EndpointDescriptor:
    bLength: int
    bDescriptorType: int
    bEndpointAddress: int
    bmAttributes: int
    wMaxPacketSize: int
    bInterval: int
    bRefresh: int = 0
    bSynchAddress: int = 0
    extra_descriptors: list[int] = field(default_factory=list)


@dataclass
class InterfaceDescriptor:
    bLength: int
    bDescriptorType: int
    bInterfaceNumber: int
    bAlternateSetting: int
    bNumEndpoints: int
    bInterfaceClass: int
    bInterfaceSubClass: int
    bInterfaceProtocol: int
    iInterface: int
    extra_descriptors: list[int] = field(default_factory=list)
    endpoints: list[EndpointDescriptor] = field(default_factory=list)


@dataclass
class ConfigurationDescriptor:
    bLength: int
    bDescriptorType: int
    wTotalLength: int
    bNumInterfaces: int
    bConfigurationValue: int
    iConfiguration: int
    bmAttributes: int
    bMaxPower: int
    extra_descriptors: list[int] = field(default_factory=list)
    # interfaces[logical interface index][logical alternate index]
    interfaces: list[list[InterfaceDescriptor]] = field(default_factory=list)
    raw: bytes = b""


def total_length(header: bytes) -> int:
    """wTotalLength from the first 9 bytes of a configuration descriptor."""
    if len(header) < 4 or header[1] != DT_CONFIGURATION:
        raise DescriptorError(f"not a configuration descriptor header: {bytes(header).hex(' ')}")
    return int.from_bytes(header[2:4], "little")


def parse_configuration(raw: bytes) -> ConfigurationDescriptor:
    """A whole configuration (header, interfaces, endpoints, class descriptors)."""
    raw = bytes(raw)
    if len(raw) < 9 or raw[1] != DT_CONFIGURATION:
        raise DescriptorError(f"not a configuration descriptor: {raw[:9].hex(' ')}")
    cfg = ConfigurationDescriptor(*struct.unpack("<BBHBBBBB", raw[:9]), raw=raw)
    if cfg.wTotalLength != len(raw):
        raise DescriptorError(
            f"configuration says wTotalLength {cfg.wTotalLength}, device sent {len(raw)} bytes"
        )
    by_number: dict[int, int] = {}
    current: InterfaceDescriptor | EndpointDescriptor | ConfigurationDescriptor = cfg
    current_intf: InterfaceDescriptor | None = None
    pos = cfg.bLength
    while pos < len(raw):
        length = raw[pos]
        if length < 2 or pos + length > len(raw):
            raise DescriptorError(f"descriptor at offset {pos} of the configuration has bad length {length}")
        chunk = raw[pos : pos + length]
        kind = chunk[1]
        if kind == DT_INTERFACE:
            if length < 9:
                raise DescriptorError(f"interface descriptor at offset {pos} is {length} bytes, expected 9")
            intf = InterfaceDescriptor(*struct.unpack("<BBBBBBBBB", chunk[:9]))
            index = by_number.setdefault(intf.bInterfaceNumber, len(cfg.interfaces))
            if index == len(cfg.interfaces):
                cfg.interfaces.append([])
            cfg.interfaces[index].append(intf)
            current = current_intf = intf
        elif kind == DT_ENDPOINT and current_intf is not None:
            if length < 7:
                raise DescriptorError(f"endpoint descriptor at offset {pos} is {length} bytes, expected 7")
            ep = EndpointDescriptor(*struct.unpack("<BBBBHB", chunk[:7]))
            if length >= 9:
                ep.bRefresh, ep.bSynchAddress = chunk[7], chunk[8]
            current_intf.endpoints.append(ep)
            current = ep
        else:
            current.extra_descriptors.extend(chunk)
        pos += length
    return cfg


def decode_string(raw: bytes) -> str:
    """A string descriptor's UTF-16LE text."""
    if len(raw) < 2 or raw[1] != DT_STRING:
        raise DescriptorError(f"not a string descriptor: {bytes(raw[:4]).hex(' ')}")
    return bytes(raw[2 : raw[0]]).decode("utf-16-le", errors="replace")
