"""Benchmark the ER7 reader (issue 2): PulseBridge `parse` vs python-hl7 `hl7.parse` vs a bare str.split.

Run: `python bench/bench_reader.py [--rounds N] [--seconds S]`. Not a test.

Each reader gets the same bytes and does the same reads per message:
  1. decode the bytes (PulseBridge: MSH-18 / UTF-8 / fallback rule; others: bytes.decode("utf-8")),
  2. split the message,
  3. read PID-3 (first repetition, component 1), PID-5 (family name, component 1) and OBX-5
     (component 1) of every OBX, escapes decoded where the reader decodes them (PulseBridge and
     python-hl7 both do; the bare split does not).
Messages: an ADT^A01 (MSH EVN PID PD1 NK1x2 PV1 PV2 AL1x2 DG1x2 PR1 GT1 IN1 IN2), and an
ORU^R01 with 12 and with 200 OBX, built from corpus-like content (ms-fhir-converter samples) with
escapes (\\T\\ \\S\\ \\.br\\ \\X..\\) and a Chinese patient name, MSH-18 UNICODE UTF-8.
Each round times as many messages as fit in --seconds; the table gives the best and median
messages/s over the rounds, and the ratios ours/python-hl7 and bare/ours (of the bests: the
least disturbed round on a shared machine).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hl7  # noqa: E402  (python-hl7, test extra)

from adapters.hl7v2 import parse  # noqa: E402

MSH = "MSH|^~\\&|HIS^2.16.840.1.113883.19.1^ISO|GHH^2.16.840.1.122848.1.30^ISO|PULSEBRIDGE|GW|20240315083000+0800||{type}|{id}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8"
PID = (
    "PID|1||PATID1234^^^GHH&2.16.840.1.122848.1.30&ISO^MR~110101199003071234^^^CN-MPI^NNCHN||张^三丰^^^^^L~EVERYMAN^ADAM^A^III^Dr.^^L||"
    "19900307|M||2106-3^White^HL70005|东城区王府井大街1号^^北京市^^100730^CHN^H||^PRN^PH^^86^10^12345678~^NET^Internet^zs@example.cn|"
    "^WPN^PH^^86^10^87654321|zh^Chinese^ISO639|M^Married^HL70002||4000776^^^GHH^VN||||N^Not Hispanic^HL70189"
)
ADT = "\r".join(
    [
        MSH.format(type="ADT^A01^ADT_A01", id="ADT00001"),
        "EVN|A01|20240315083000+0800||01^Patient request^HL70062|C08^Woolfson^Kathleen^^^Dr^MD",
        PID,
        "PD1|||GOOD HEALTH CLINIC^^1234|C006^Woolfson^Kathleen^^^Dr",
        "NK1|1|张^丽^^^^^L|SPO^Spouse^HL70063|东城区王府井大街1号^^北京市^^100730^CHN|^PRN^PH^^86^10^12345678||EC^Emergency Contact^HL70131",
        "NK1|2|EVERYMAN^EVE|MTH^Mother^HL70063|1000 Hospital Lane^Ste. 123^Ann Arbor^MI^99999^USA|^PRN^PH^^1^734^5551234",
        "PV1|1|I|WARD7^701^2^GHH^^^^Floor 7|E|||1122334^Alaz^Mohammed^^JR^Dr.^MD|C006^Woolfson^Kathleen^^^Dr||MED|||R|"
        "NHS Provider-General (inc.A\\T\\E-this Hosp)||VIP^Very Important Person^L|37^DISNEY^WALT|IP||||||||||||||||||||||||20240315083000+0800",
        "PV2|||CHEST PAIN^Chest pain^L||||||20240320|5|||||||||||N",
        "AL1|1|DA|1605^Penicillin^RXNORM|SV^Severe^HL70128|Hives\\S\\rash|20100101",
        "AL1|2|FA|256349002^Peanut^SCT|MO^Moderate^HL70128|Swelling|20150505",
        "DG1|1|I10|I20.9^Angina pectoris, unspecified^I10|Angina|20240315083000+0800|A",
        "DG1|2|I10|E11.9^Type 2 diabetes mellitus without complications^I10|T2DM|20200101|W",
        "PR1|1|C4|93000^Electrocardiogram^C4|ECG|20240315090000+0800|D",
        "GT1|1|8291|张^三丰||东城区王府井大街1号^^北京市^^100730^CHN|^PRN^PH^^86^10^12345678||19900307|M||SEL^Self^HL70063",
        "IN1|1|PPO^PPO Plan^L|CNHI001^^^CNHI^NIIP|China National Health Insurance|No. 1 Road^^Beijing^^100000^CHN||"
        "^WPN^PH^^86^10^11112222|GRP-123|Employer group||20240101|20241231|||张^三丰|SEL^Self^HL70063|19900307|"
        "东城区王府井大街1号^^北京市^^100730^CHN|||||||||||||||||POL-998877",
        "IN2|1|110101199003071234|||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||ZH",
    ]
) + "\r"


def oru(observations: int) -> str:
    segments = [
        MSH.format(type="ORU^R01^ORU_R01", id=f"ORU{observations:05d}"),
        PID,
        "PV1|1|O|LAB^^^GHH||||1122334^Alaz^Mohammed^^JR^Dr.^MD",
        "ORC|RE|845439^GHH OE|986^LAB^2.16.840.1.114222.4.3.3.5.1.2^ISO||CM",
        "OBR|1|845439^GHH OE|986^LAB|24323-8^Comprehensive metabolic panel^LN|||20240315070000+0800|||||||"
        "20240315071500+0800|BLD&Blood&HL70070|1122334^Alaz^Mohammed^^JR^Dr.^MD||||||20240315100000+0800|||F",
    ]
    tests = [
        ("2345-7", "Glucose", "NM", "5.4", "mmol/L", "3.9-6.1"),
        ("2160-0", "Creatinine", "NM", "88", "umol/L", "53-115"),
        ("2951-2", "Sodium", "NM", "140", "mmol/L", "135-145"),
        ("718-7", "Hemoglobin", "NM", "13.2", "g/dL", "12-16"),
        ("11529-5", "Pathology report", "FT", "Specimen A\\.br\\Benign tissue \\T\\ margins clear", "", ""),
        ("8251-1", "Service comment", "ST", "Sample haemolysed \\S\\ repeat advised", "", ""),
        ("5778-6", "Color of Urine", "CWE", "YELLOW^Yellow^L", "", ""),
        ("33914-3", "eGFR", "NM", "92", "mL/min/{1.73_m2}", ">60"),
        ("2093-3", "Cholesterol", "NM", "5.2", "mmol/L", "<5.2"),
        ("58410-2", "CBC panel note", "TX", "血常规未见异常 \\XE2\\ ok", "", ""),
    ]
    for n in range(1, observations + 1):
        code, name, vt, value, unit, ref = tests[(n - 1) % len(tests)]
        segments.append(
            f"OBX|{n}|{vt}|{code}^{name}^LN||{value}|{unit}^{unit}^UCUM|{ref}|N|||F|||20240315093000+0800|"
            f"GHH^Lab^L|1122334^Alaz^Mohammed|||20240315093000+0800||||GHH Laboratory^L^^^^CLIA&2.16.840.1.113883.4.7&ISO^XX^^^05D0000000"
        )
    segments.append("NTE|1|L|Reviewed by \\H\\Dr. Alaz\\N\\, results \\T\\ comments final")
    return "\r".join(segments) + "\r"


MESSAGES: dict[str, bytes] = {
    "ADT^A01": ADT.encode("utf-8"),
    "ORU^R01, 12 OBX": oru(12).encode("utf-8"),
    "ORU^R01, 200 OBX": oru(200).encode("utf-8"),
}


def pulsebridge(data: bytes) -> tuple[str, str, list[str]]:
    msg = parse(data)
    pid = msg.segment("PID")
    assert pid is not None
    return pid.get(3), pid.get(5), [obx.get(5) for obx in msg.all("OBX")]


def python_hl7(data: bytes) -> tuple[str, str, list[str]]:
    msg = hl7.parse(data.decode("utf-8"))
    pid = msg.segment("PID")
    return (
        pid.extract_field(1, 3, 1, 1, 1),
        pid.extract_field(1, 5, 1, 1, 1),
        [obx.extract_field(1, 5, 1, 1, 1) for obx in msg if obx[0][0] == "OBX"],  # msg.segments() raises when none
    )


def bare_split(data: bytes) -> tuple[str, str, list[str]]:
    rows = [segment.split("|") for segment in data.decode("utf-8").split("\r") if segment]
    pid = next(row for row in rows if row[0] == "PID")
    return (
        pid[3].split("~", 1)[0].split("^", 1)[0],
        pid[5].split("~", 1)[0].split("^", 1)[0],
        [row[5].split("~", 1)[0].split("^", 1)[0] for row in rows if row[0] == "OBX"],
    )


READERS: dict[str, Callable[[bytes], tuple[str, str, list[str]]]] = {
    "pulsebridge": pulsebridge,
    "python-hl7": python_hl7,
    "bare split": bare_split,
}


def rate(reader: Callable[[bytes], object], data: bytes, seconds: float) -> float:
    """Messages per CPU second over about `seconds` of repeated calls.

    CPU time of this process (time.process_time), not wall time: on a shared machine the wall
    clock also counts the time other processes held the CPU.
    """
    batch = 1
    while True:
        start = time.process_time()
        for _ in range(batch):
            reader(data)
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            return batch / elapsed
        batch = max(batch * 2, int(batch * seconds / max(elapsed, 1e-6)))


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--seconds", type=float, default=0.3, help="time per reader, message and round")
    args = options.parse_args()

    for name, data in MESSAGES.items():  # same answers from every reader (bare split: escapes left as sent)
        ours, theirs = pulsebridge(data), python_hl7(data)
        # python-hl7 turns \.br\ into CR, PulseBridge into LF: otherwise the same text
        assert ours[:2] == theirs[:2] and ours[2] == [v.replace("\r", "\n") for v in theirs[2]], (name, ours, theirs)
        assert ours[1] == "张"

    print(f"Python {sys.version.split()[0]}, hl7 (python-hl7) {getattr(hl7, '__version__', '')}; "
          f"{args.rounds} rounds x {args.seconds}s CPU; messages per CPU second (best / median)")
    print(f"{'message':<18} {'bytes':>6} {'pulsebridge':>21} {'python-hl7':>19} {'bare split':>21} {'ours/hl7':>9} {'bare/ours':>10}")
    for name, data in MESSAGES.items():
        samples: dict[str, list[float]] = {reader: [] for reader in READERS}
        for _ in range(args.rounds):  # interleave readers within a round so drift hits all alike
            for reader, function in READERS.items():
                samples[reader].append(rate(function, data, args.seconds))
        best = {r: max(v) for r, v in samples.items()}
        median = {r: statistics.median(v) for r, v in samples.items()}
        cells = "".join(f" {best[r]:>10,.0f} / {median[r]:>8,.0f}" for r in READERS)
        print(
            f"{name:<18} {len(data):>6}{cells} {best['pulsebridge'] / best['python-hl7']:>8.1f}x"
            f" {best['bare split'] / best['pulsebridge']:>9.2f}x"
        )


if __name__ == "__main__":
    main()
